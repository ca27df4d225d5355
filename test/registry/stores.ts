// The stores as test cases: a fresh, isolated registry on each (one key prefix per registry on
// Redis): the memory store, one real redis-server, and a real Redis Cluster of 3 masters with 3
// replicas (README.md, "Redis Cluster"), each started once per test file and closed after its tests.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import { startRegistry, type RegistryOptions, type RunningRegistry } from '../../src/registry/index';
import { redisServerAvailable, startRedis, type TestRedis } from '../support/redis';
import { clusterToolsAvailable, startCluster, type TestCluster } from './cluster';

export const haveRedis = redisServerAvailable();
export const haveCluster = clusterToolsAvailable();
if (!haveCluster && process.env.CI === 'true') throw new Error('redis-server or redis-cli is not installed, and CI=true requires the Redis Cluster tests to run');
if (!haveCluster) console.warn('\n*** SKIPPING the Redis Cluster store case: redis-server or redis-cli is not installed (required in CI) ***\n');

export interface StoreCase {
  /** The case: which backend the registry runs on. */
  name: 'memory' | 'redis' | 'cluster';
  /** The store the registry reports (/healthz, /metrics): a cluster is a Redis store. */
  store: 'memory' | 'redis';
  /** Why this case is skipped here, or false. */
  skip: string | false;
  /** Starts a fresh, isolated registry on this store. */
  start(ttl?: number, host?: string, extra?: Partial<RegistryOptions>): Promise<RunningRegistry>;
  /** The --redis URL (Redis cases only: redis:// or redis-cluster://), for tests that read Redis directly. */
  redisUrl?(): string;
}

/** The memory, Redis and Redis Cluster cases; call once at the top of a test file (it adds before/after hooks). */
export function storeCases(): StoreCase[] {
  let redis: TestRedis | undefined;
  let cluster: Promise<TestCluster> | undefined;
  let clusterUrl = '';
  const running: RunningRegistry[] = [];
  const base = (ttl: number, host: string) => ({ host, port: 0, ttl, stunPort: null });
  async function track(p: Promise<RunningRegistry>): Promise<RunningRegistry> {
    const r = await p;
    running.push(r);
    return r;
  }
  before(async () => {
    // One cluster for the whole file. It takes about 3 s to form (mostly its nodes' gossip), so it
    // is not waited for here: it forms while the memory and redis cases run, and the cluster case's
    // first start() waits for it (and fails with its error if it did not form).
    if (haveCluster) {
      cluster = startCluster({ masters: 3, replicas: 1 });
      cluster.then((c) => (clusterUrl = c.url), () => {});
    }
    if (haveRedis) redis = await startRedis();
  });
  after(async () => {
    await Promise.all(running.map((r) => r.close()));
    await Promise.all([redis?.close(), cluster?.then((c) => c.close(), () => {})]);
  });
  const onRedis = (url: string, ttl = 30, host = '127.0.0.1', extra: Partial<RegistryOptions> = {}) =>
    track(startRegistry({ ...base(ttl, host), redisUrl: url, redisPrefix: `t-${randomUUID()}:`, ...extra }));
  return [
    { name: 'memory', store: 'memory', skip: false, start: (ttl = 30, host = '127.0.0.1', extra = {}) => track(startRegistry({ ...base(ttl, host), ...extra })) },
    { name: 'redis', store: 'redis', skip: haveRedis ? false : 'redis-server missing', start: (...a) => onRedis(redis!.url, ...a), redisUrl: () => redis!.url },
    { name: 'cluster', store: 'redis', skip: haveCluster ? false : 'redis-server/redis-cli missing', start: async (...a) => onRedis((await cluster!).url, ...a), redisUrl: () => clusterUrl },
  ];
}

/** The code of an error answer, after checking its shape. */
export function errorCode(json: any): string {
  assert.equal(typeof json?.error?.message, 'string', `error shape: ${JSON.stringify(json)}`);
  assert.match(json.error.code, /^[a-z]+(_[a-z]+)*$/);
  return json.error.code;
}
