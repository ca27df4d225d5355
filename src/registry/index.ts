// startRegistry: the whole registry (store + HTTP API + STUN) in this process, for the CLI and tests.
import { EventLog, type LogWrite } from './event-log';
import type { HttpTimeouts } from './http-guard';
import { resolveLimits, type RegistryLimits } from './limits';
import { MemoryStore } from './memory-store';
import { RedisStore } from './redis-store';
import { closeServer, createRegistryServer, listen } from './server';
import type { PeerStore } from './store';
import { startStunServer, type StunServer } from './stun-server';

export interface RegistryOptions {
  host?: string;
  port?: number;
  /** Seconds a registration lives after its last heartbeat (default 30). */
  ttl?: number;
  /** Use Redis at this URL instead of the memory store. */
  redisUrl?: string;
  /** Key prefix in Redis (default "p2pshare:"). */
  redisPrefix?: string;
  /** UDP port for STUN; 0 = any free port; null = no STUN server. */
  stunPort?: number | null;
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
  const store: PeerStore = opts.redisUrl
    ? new RedisStore({
        url: opts.redisUrl,
        ...storeLimits,
        ...(opts.redisPrefix ? { prefix: opts.redisPrefix } : {}),
        ...(opts.redisSweepIntervalMs !== undefined ? { sweepIntervalMs: opts.redisSweepIntervalMs } : {}),
      })
    : new MemoryStore(storeLimits);
  if (store instanceof RedisStore) await store.waitReady(2000); // not fatal: /healthz says 503 until it is up
  const log = new EventLog(opts.log, opts.logIntervalMs, opts.debug ?? false);
  const api = createRegistryServer({
    store, ttl, limits, log,
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
  if (opts.stunPort !== undefined && opts.stunPort !== null) {
    try {
      metrics.enableStun();
      stun = await startStunServer({ host, port: opts.stunPort, count: (o) => metrics.countStun(o) });
    } catch (err) {
      await closeServer(server);
      api.close();
      await store.close();
      throw new Error(`STUN udp port ${opts.stunPort}: ${(err as Error).message}`, { cause: err });
    }
  }
  const stunPort = stun ? stun.port : null;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    stunPort,
    store: store.kind,
    limits,
    connectionsLowered,
    close() {
      closing ??= (async () => {
        await Promise.all([closeServer(server), stun?.close()]);
        api.close();
        await store.close();
      })();
      return closing;
    },
  };
}
