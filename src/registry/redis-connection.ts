// Opens what `--redis` names (redis-target.ts): one Redis or a Redis Cluster (README.md, "Redis
// Cluster"), with the same fail-fast options: a command the backend cannot answer now fails at
// once (the server answers 503), and the connections come back by themselves.
import { Cluster, Redis, type ClusterNode } from 'ioredis';
import type { RedisTarget } from './redis-target';

export { parseRedisTarget, type RedisTarget } from './redis-target';

export interface ConnectOptions {
  /** A command not answered within this many ms fails. */
  commandTimeoutMs?: number;
  /** Queue commands until connected (a subscriber) instead of failing them at once. */
  queue?: boolean;
  /** Cluster only: open connections for SSUBSCRIBE (the introductions' channels). */
  shardedSubscribers?: boolean;
}

export type AnyRedis = Redis | Cluster;

const RETRY = (times: number): number => Math.min(100 * times, 1000);

/** How often a Cluster client reads the slot map again (so it finds a promoted replica soon). */
const SLOTS_REFRESH_MS = 1000;

/** One Redis or a Cluster client for `target`. */
export function connectRedis(target: RedisTarget, o: ConnectOptions = {}): AnyRedis {
  // No auto-pipelining: it saved ~12 us per lookup (92 -> 80, one command per write instead of a
  // batch per tick), but a command in an automatic pipeline is not bound by commandTimeout, so a
  // frozen Redis held requests until other deadlines ran out (2.6-2.8 s instead of a 503 within
  // 2 s, test/registry/redis.test.ts) instead of failing fast.
  const failFast = o.queue ? {} : { maxRetriesPerRequest: 0, ...(o.commandTimeoutMs ? { commandTimeout: o.commandTimeoutMs } : {}) };
  if (target.kind === 'single') {
    return new Redis(target.url, { connectTimeout: 1500, retryStrategy: RETRY, enableOfflineQueue: o.queue === true, ...failFast });
  }
  const nodes: ClusterNode[] = target.nodes.map((n) => ({ host: n.host, port: n.port }));
  const cluster = new Cluster(nodes, {
    enableOfflineQueue: o.queue === true,
    clusterRetryStrategy: RETRY,
    // A master that died: its slots fail fast (503) instead of being retried for seconds, and
    // the slot map is read again often, so its promoted replica is used soon after the failover.
    maxRedirections: 3,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    // Not ioredis's own slotsRefreshInterval: a refresh in flight when the client is closed arms
    // its timer again, for ever, and the process never exits (seen in test/registry/stores.ts's
    // cluster case). The same refresh on a timer of ours instead, below.
    slotsRefreshInterval: 0,
    slotsRefreshTimeout: 1000,
    shardedSubscribers: o.shardedSubscribers === true,
    redisOptions: {
      connectTimeout: 1500,
      ...failFast,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password !== undefined ? { password: target.password } : {}),
      ...(target.tls ? { tls: {} } : {}),
    },
  });
  // The slot map read again every second while connected; unref'd and stopped with the client.
  const refresh = setInterval(() => {
    if (cluster.status === 'ready') cluster.refreshSlotsCache();
  }, SLOTS_REFRESH_MS).unref();
  cluster.once('end', () => clearInterval(refresh));
  return cluster;
}
