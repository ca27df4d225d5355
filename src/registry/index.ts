// startRegistry: the whole registry (store + HTTP API + STUN) in this process, for the CLI and tests.
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
}

export interface RunningRegistry {
  url: string;
  port: number;
  stunPort: number | null;
  store: 'memory' | 'redis';
  close(): Promise<void>;
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<RunningRegistry> {
  const host = opts.host ?? '127.0.0.1';
  const ttl = opts.ttl ?? 30;
  const store: PeerStore = opts.redisUrl
    ? new RedisStore({ url: opts.redisUrl, ...(opts.redisPrefix ? { prefix: opts.redisPrefix } : {}) })
    : new MemoryStore();
  if (store instanceof RedisStore) await store.waitReady(2000); // not fatal: /healthz says 503 until it is up
  const { server, metrics } = createRegistryServer({ store, ttl, ...(opts.challengeTtlMs !== undefined ? { challengeTtlMs: opts.challengeTtlMs } : {}) });
  let port: number;
  try {
    port = await listen(server, host, opts.port ?? 8000);
  } catch (err) {
    await store.close();
    throw err;
  }
  let stun: StunServer | null = null;
  if (opts.stunPort !== undefined && opts.stunPort !== null) {
    try {
      metrics.enableStun();
      stun = await startStunServer({ host, port: opts.stunPort, count: (o) => metrics.countStun(o) });
    } catch (err) {
      await closeServer(server);
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
    close() {
      closing ??= (async () => {
        await Promise.all([closeServer(server), stun?.close()]);
        await store.close();
      })();
      return closing;
    },
  };
}
