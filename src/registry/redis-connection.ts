// What `--redis` names (README.md, "Redis Cluster"): one Redis (redis://, rediss://) or a Redis
// Cluster given by seed nodes, redis-cluster://[user:password@]host:port,host:port,... (any reachable
// seed will do; the client learns the other nodes and the slot map from it). Both are opened
// here, with the same fail-fast options: a command the backend cannot answer now fails at once
// (the server answers 503), and the connections come back by themselves.
import { Cluster, Redis, type ClusterNode } from 'ioredis';

export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; username?: string; password?: string; tls: boolean };

const CLUSTER_SCHEMES = /^(rediss?-cluster):\/\/(.*)$/i;

/** Parses a --redis value; throws a RangeError with a readable message when it is malformed. Pure. */
export function parseRedisTarget(url: string): RedisTarget {
  const m = CLUSTER_SCHEMES.exec(url.trim());
  if (!m) return { kind: 'single', url };
  let rest = m[2]!;
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = auth.indexOf(':');
    const user = decodeURIComponent(colon < 0 ? auth : auth.slice(0, colon));
    if (user) username = user;
    if (colon >= 0) password = decodeURIComponent(auth.slice(colon + 1));
  }
  rest = rest.replace(/\/.*$/, '');
  const nodes = rest.split(',').filter(Boolean).map((seed) => {
    const s = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(seed);
    const port = Number(s?.[3]);
    if (!s || port < 1 || port > 65535) throw new RangeError(`a cluster seed must be HOST:PORT, got '${seed}' in '${url}'`);
    return { host: (s[1] ?? s[2])!, port };
  });
  if (nodes.length === 0) throw new RangeError(`redis-cluster:// needs at least one seed node HOST:PORT, got '${url}'`);
  return { kind: 'cluster', nodes, tls: m[1]!.toLowerCase() === 'rediss-cluster', ...(username ? { username } : {}), ...(password !== undefined ? { password } : {}) };
}

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
  return new Cluster(nodes, {
    enableOfflineQueue: o.queue === true,
    clusterRetryStrategy: RETRY,
    // A master that died: its slots fail fast (503) instead of being retried for seconds, and
    // the slot map is read again often, so its promoted replica is used soon after the failover.
    maxRedirections: 3,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    slotsRefreshInterval: 1000,
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
}
