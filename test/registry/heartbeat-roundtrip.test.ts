// A heartbeat costs the Redis store one command (one script call, one round trip), counted by
// Redis itself (MONITOR), and 40 concurrent heartbeats of one name all land.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { startRegistry, type RunningRegistry } from '../../src/registry/index';
import { redisServerAvailable, startRedis, type TestRedis } from '../support/redis';
import { bearer, call, register } from './http';

const haveRedis = redisServerAvailable();

/**
 * The commands clients send to `redis` while `work` runs, as MONITOR sees them (the ones a script
 * runs inside Redis are left out: they cost no round trip).
 */
export async function clientCommands(url: string, work: () => Promise<void>): Promise<string[]> {
  const watcher = new Redis(url);
  const monitor = await watcher.monitor();
  const seen: string[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua' && !/^(monitor|info)$/i.test(args[0] ?? '')) seen.push(String(args[0]).toLowerCase());
  });
  try {
    await work();
    // MONITOR lines arrive after the replies: wait until the stream is quiet.
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    monitor.disconnect();
    watcher.disconnect();
  }
  return seen;
}

describe('heartbeats on one Redis', { skip: haveRedis ? false : 'redis-server missing' }, () => {
  let redis: TestRedis;
  let reg: RunningRegistry;
  let probe: Redis;
  before(async () => {
    redis = await startRedis();
    // No sweep timer: nothing but the requests talks to Redis.
    reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null, redisUrl: redis.url, redisSweepIntervalMs: 0 });
    probe = new Redis(redis.url);
  });
  after(async () => {
    probe?.disconnect();
    await reg?.close();
    await redis?.close();
  });

  test('each heartbeat is exactly one Redis command (a script), 40 concurrent ones all land', async () => {
    const r = await register(reg.url, { name: 'Beat', port: 4000 });
    assert.equal(r.status, 201);
    const hb = (token: string) => call(reg.url, 'POST', '/v1/peers/beat/heartbeat', undefined, bearer(token));
    assert.equal((await hb(r.json.token)).status, 200); // loads the script (EVALSHA, then EVAL once)
    const used = await clientCommands(redis.url, async () => {
      const answers = await Promise.all(Array.from({ length: 40 }, () => hb(r.json.token)));
      assert.deepEqual(answers.map((a) => a.status), Array(40).fill(200));
    });
    assert.deepEqual(used, Array(40).fill('evalsha'), `Redis commands for 40 heartbeats: ${used.join(' ')}`);
    // The last heartbeat's lastSeen is the record's, and its expiry was pushed out.
    const [lastSeen, pttl] = await Promise.all([probe.hget('p2pshare:peer:beat', 'lastSeen'), probe.pttl('p2pshare:peer:beat')]);
    assert.equal(Date.parse((await call(reg.url, 'GET', '/v1/peers/beat')).json.lastSeen), Number(lastSeen));
    assert.ok(pttl > 25_000, `PTTL ${pttl}`);
    // A wrong token is one command too, and changes nothing.
    assert.deepEqual(await clientCommands(redis.url, async () => assert.equal((await hb('x'.repeat(32))).status, 403)), ['evalsha']);
    assert.equal(await probe.hget('p2pshare:peer:beat', 'lastSeen'), lastSeen);
  });
});
