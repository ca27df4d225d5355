// The two stores as test cases: a fresh, isolated registry on each (Redis: a real redis-server,
// one key prefix per registry), closed after the file's tests.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import { startRegistry, type RegistryOptions, type RunningRegistry } from '../../src/registry/index';
import { redisServerAvailable, startRedis, type TestRedis } from '../support/redis';

export const haveRedis = redisServerAvailable();

export interface StoreCase {
  store: 'memory' | 'redis';
  /** Starts a fresh, isolated registry on this store. */
  start(ttl?: number, host?: string, extra?: Partial<RegistryOptions>): Promise<RunningRegistry>;
  /** The Redis URL (redis case only), for tests that read Redis directly. */
  redisUrl?(): string;
}

/** The memory and Redis cases; call once at the top of a test file (it adds before/after hooks). */
export function storeCases(): StoreCase[] {
  let redis: TestRedis | undefined;
  const running: RunningRegistry[] = [];
  async function track(p: Promise<RunningRegistry>): Promise<RunningRegistry> {
    const r = await p;
    running.push(r);
    return r;
  }
  before(async () => {
    if (haveRedis) redis = await startRedis();
  });
  after(async () => {
    await Promise.all(running.map((r) => r.close()));
    await redis?.close();
  });
  return [
    { store: 'memory', start: (ttl = 30, host = '127.0.0.1', extra = {}) => track(startRegistry({ host, port: 0, ttl, stunPort: null, ...extra })) },
    {
      store: 'redis',
      start: (ttl = 30, host = '127.0.0.1', extra = {}) =>
        track(startRegistry({ host, port: 0, ttl, stunPort: null, redisUrl: redis!.url, redisPrefix: `t-${randomUUID()}:`, ...extra })),
      redisUrl: () => redis!.url,
    },
  ];
}

/** The code of an error answer, after checking its shape. */
export function errorCode(json: any): string {
  assert.equal(typeof json?.error?.message, 'string', `error shape: ${JSON.stringify(json)}`);
  assert.match(json.error.code, /^[a-z]+(_[a-z]+)*$/);
  return json.error.code;
}
