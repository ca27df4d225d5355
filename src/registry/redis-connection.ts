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

/**
 * How often a Cluster client reads the slot map again. Each read opens a connection and rebuilds
 * ioredis's 16,384-slot tables (about 4.5 ms of a registry's event loop at 10^5 peers), so it is
 * done every second only while there are signs of a failover (a node lost or failing, a command
 * failed: see slotMapSuspect), and rarely otherwise; a slot that moved in calm times answers
 * MOVED, which makes ioredis read the map at once.
 */
const SLOTS_REFRESH_MS = 1000;
const SLOTS_REFRESH_CALM_MS = 15_000;
/** After a sign of trouble, the map is read every second for this long (a failover's length). */
const SUSPECT_FOR_MS = 30_000;

const suspects = new WeakMap<Cluster, () => void>();

/**
 * A command on `redis` failed: if it is a Cluster client, read its slot map every second for a
 * while, so a replica promoted by a failover is used within about a second of its promotion.
 */
export function slotMapSuspect(redis: AnyRedis): void {
  if (redis instanceof Cluster) suspects.get(redis)?.();
}

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
  // Unref'd and stopped with the client: every second while suspect, every 15 s otherwise.
  let suspectUntil = 0;
  let lastRefresh = performance.now();
  const suspect = () => {
    suspectUntil = performance.now() + SUSPECT_FOR_MS;
  };
  suspects.set(cluster, suspect);
  cluster.on('-node', suspect); // a node's connection closed
  cluster.on('node error', suspect); // a node failed to answer CLUSTER SLOTS
  const refresh = setInterval(() => {
    const now = performance.now();
    if (cluster.status !== 'ready' || (now >= suspectUntil && now - lastRefresh < SLOTS_REFRESH_CALM_MS)) return;
    lastRefresh = now;
    cluster.refreshSlotsCache();
  }, SLOTS_REFRESH_MS).unref();
  cluster.once('end', () => clearInterval(refresh));
  return cluster;
}
