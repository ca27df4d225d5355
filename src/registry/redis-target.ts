// What `--redis` names (README.md, "Redis Cluster"): one Redis (redis://, rediss://) or a Redis
// Cluster given by seed nodes, redis-cluster://[user:password@]host:port,host:port,... (any reachable
// seed will do; the client learns the other nodes and the slot map from it). Pure, and apart from
// redis-connection.ts so that checking the option does not load ioredis (README "Start-up").

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
