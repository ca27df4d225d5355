// startRegistry: the whole registry (store + HTTP API + UDP socket for STUN, rendezvous and relay)
// in this process, for the CLI and tests.
import { randomBytes } from 'node:crypto';
import { normalizeIp } from '../core/addresses';
import { EventLog, type LogWrite } from './event-log';
import type { HttpTimeouts } from './http-guard';
import { resolveLimits, type RegistryLimits } from './limits';
import { MemoryStore } from './memory-store';
import type { RedisStore } from './redis-store';
import type { RedisIntroBus } from './intro-bus';
import { DEFAULT_RELAY_LIMITS, RelaySessions, type RelayLimits } from './relay';
import { RendezvousService } from './rendezvous';
import { closeServer, listen } from './http';
import { createRegistryServer, type RendezvousInfo } from './server';
import type { Endpoint, PeerStore } from './store';
import { isWildcard, startStunServer, type StunServer } from './stun-server';

export interface RegistryOptions {
  host?: string;
  port?: number;
  /** Seconds a registration lives after its last heartbeat (default 30). */
  ttl?: number;
  /** Use Redis at this URL instead of the memory store. */
  redisUrl?: string;
  /** Key prefix in Redis (default "p2pshare:"). */
  redisPrefix?: string;
  /** UDP port for STUN, rendezvous and relay; 0 = any free port; null = no UDP socket. */
  stunPort?: number | null;
  /** The relay's caps (each one left out takes its default), or false for none (--no-relay). */
  relay?: Partial<RelayLimits> | false;
  /**
   * The UDP address peers reach this process at (--advertise-udp), the port defaulting to the one
   * bound; by default `host` when it is not a wildcard.
   */
  advertiseUdp?: { ip: string; port?: number };
  /** How long a registration challenge stays valid (default 60 s; for tests). */
  challengeTtlMs?: number;
  /** Limits; each one left out takes its default (DEFAULT_LIMITS, the connection cap from the fd limit). */
  limits?: Partial<RegistryLimits>;
  /** HTTP deadlines (for tests; the defaults are the product's). */
  timeouts?: Partial<HttpTimeouts>;
  /** Log lines go here (default stderr); repeated events are summed over logIntervalMs (default 60 s). */
  log?: LogWrite;
  logIntervalMs?: number;
  /** Stacks of unexpected errors in the log. */
  debug?: boolean;
  /** How often the Redis index is swept of expired members (default 1 s). */
  redisSweepIntervalMs?: number;
}

export interface RunningRegistry {
  url: string;
  port: number;
  stunPort: number | null;
  store: 'memory' | 'redis';
  /** This process's id in the store (whose keepalives it holds). */
  processId: string;
  /** The UDP address recorded as this process's rendezvous, or null (none advertised). */
  advertisedUdp: Endpoint | null;
  /** The relay's caps, or null when it does not relay (or has no UDP socket). */
  relay: RelayLimits | null;
  /** The limits in force. */
  limits: RegistryLimits;
  /** True when limits.maxConnections was asked above what the file-descriptor limit allows, and lowered. */
  connectionsLowered: boolean;
  close(): Promise<void>;
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<RunningRegistry> {
  const host = opts.host ?? '127.0.0.1';
  const ttl = opts.ttl ?? 30;
  const { limits, connectionsLowered } = resolveLimits(opts.limits);
  const storeLimits = { maxPeers: limits.maxPeers, maxNamesPerClient: limits.maxNamesPerIp };
  // ioredis is loaded only with Redis: the memory store starts without evaluating it.
  const redis: RedisStore | null = opts.redisUrl
    ? new (await import('./redis-store')).RedisStore({
        url: opts.redisUrl,
        ...storeLimits,
        ...(opts.redisPrefix ? { prefix: opts.redisPrefix } : {}),
        ...(opts.redisSweepIntervalMs !== undefined ? { sweepIntervalMs: opts.redisSweepIntervalMs } : {}),
      })
    : null;
  const store: PeerStore = redis ?? new MemoryStore(storeLimits);
  if (redis) await redis.waitReady(2000); // not fatal: /healthz says 503 until it is up
  const log = new EventLog(opts.log, opts.logIntervalMs, opts.debug ?? false);
  const processId = randomBytes(8).toString('hex');
  let rendezvousInfo: RendezvousInfo | null = null;
  const api = createRegistryServer({
    store, ttl, limits, log, rendezvous: () => rendezvousInfo,
    ...(opts.challengeTtlMs !== undefined ? { challengeTtlMs: opts.challengeTtlMs } : {}),
    ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
  });
  const { server, metrics } = api;
  let port: number;
  try {
    port = await listen(server, host, opts.port ?? 8000);
  } catch (err) {
    api.close();
    await store.close();
    throw err;
  }
  // Once listening, a failed accept() (EMFILE when descriptors run out) is logged, not fatal.
  server.on('error', (err) => log.error('accept_failed', err));
  let stun: StunServer | null = null;
  let relay: RelaySessions | null = null;
  let bus: RedisIntroBus | null = null;
  let advertisedUdp: Endpoint | null = null;
  if (opts.stunPort !== undefined && opts.stunPort !== null) {
    let service: RendezvousService | null = null;
    try {
      metrics.enableStun();
      stun = await startStunServer({
        host, port: opts.stunPort, count: (o) => metrics.countStun(o), frames: (d, from) => service?.handle(d, from),
      });
    } catch (err) {
      await closeServer(server);
      api.close();
      await store.close();
      throw new Error(`STUN udp port ${opts.stunPort}: ${(err as Error).message}`, { cause: err });
    }
    const socket = stun;
    advertisedUdp = opts.advertiseUdp
      ? { ip: normalizeIp(opts.advertiseUdp.ip), port: opts.advertiseUdp.port ?? socket.port }
      : isWildcard(host) ? null : { ip: normalizeIp(host.replace(/^\[(.*)\]$/, '$1')), port: socket.port };
    metrics.enableRendezvous();
    if (opts.relay !== false) {
      relay = new RelaySessions({ ...DEFAULT_RELAY_LIMITS, ...opts.relay }, (e) => metrics.countRelay(e));
      metrics.enableRelay(relay);
    }
    const self = { id: processId, address: advertisedUdp };
    service = new RendezvousService({ store, ttlMs: ttl * 1000, self, limits, relay, metrics, log });
    service.attach((d, to) => socket.send(d, to, () => metrics.countRendezvous('send_failed')));
    if (opts.redisUrl) {
      const introducer = service;
      bus = new (await import('./intro-bus')).RedisIntroBus({ url: opts.redisUrl, prefix: opts.redisPrefix ?? 'p2pshare:', id: processId, serve: (o) => introducer.introduce(o) });
      service.bus = bus;
      // Subscribed before the ready line, when Redis is there at all (else it subscribes once it is).
      const reachable = await store.ping().then(() => true, () => false);
      await bus.ready(reachable ? 2000 : 0);
    }
    rendezvousInfo = { self, port: advertisedUdp?.port ?? socket.port, routes: bus !== null };
  }
  const stunPort = stun ? stun.port : null;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    stunPort,
    store: store.kind,
    processId,
    advertisedUdp,
    relay: relay ? relay.limits : null,
    limits,
    connectionsLowered,
    close() {
      closing ??= (async () => {
        await Promise.all([closeServer(server), stun?.close(), bus?.close()]);
        relay?.close();
        api.close();
        await store.close();
      })();
      return closing;
    },
  };
}
