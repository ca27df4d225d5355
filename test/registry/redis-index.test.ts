// The Redis listing index after a mass expiry: 30,000 registrations expire at once, then a list
// answers about as fast as on a registry that never had them, and the index (read back with ZCARD) shrinks to
// the live entries; without the timer, each list examines a bounded number of expired members and
// takes them out, and each registration removes a batch.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { startRegistry, type RunningRegistry } from '../../src/registry/index';
import { RedisStore } from '../../src/registry/redis-store';
import { redisServerAvailable, startRedis, type TestRedis } from '../support/redis';
import { call, register, sleep } from './http';

const haveRedis = redisServerAvailable();

/** Writes `expired` records that all expire at `expiresAt`, and `live` ones for a minute, through the store API. */
async function fill(url: string, prefix: string, expired: number, live: string[], expiresAt: number): Promise<void> {
  const writer = new RedisStore({ url, prefix, sweepIntervalMs: 0 });
  try {
    assert.ok(await writer.waitReady(5000));
    const record = (name: string, i: number) => ({
      name, ip: '10.0.0.1', port: 1, addresses: [], observedAddress: `10.0.${(i >> 8) & 255}.${i & 255}`, publicKey: `key-${name}`, lastSeen: Date.now(),
    });
    let next = 0;
    const worker = async () => {
      while (next < expired) {
        const i = next++;
        const r = await writer.register({
          record: record(`gone-${i}`, i), newTokenHash: 'h', ttlMs: expiresAt - Date.now(),
          challenge: { id: `fill-${prefix}-${i}`, expiresAt: Date.now() + 60_000 },
        });
        assert.equal(r.outcome, 'created');
      }
    };
    await Promise.all(Array.from({ length: 200 }, worker));
    for (const [i, name] of live.entries()) {
      await writer.register({ record: record(name, i), newTokenHash: 'h', ttlMs: 60_000, challenge: { id: `live-${prefix}-${i}`, expiresAt: Date.now() + 60_000 } });
    }
  } finally {
    await writer.close();
  }
}

async function timedList(url: string, query: string): Promise<{ ms: number; json: any }> {
  const t0 = process.hrtime.bigint();
  const r = await call(url, 'GET', `/v1/peers?${query}`);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal(r.status, 200, r.text);
  return { ms, json: r.json };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('the Redis listing index under mass expiry', { skip: haveRedis ? false : 'redis-server missing' }, () => {
  let redis: TestRedis;
  let raw: Redis;
  const running: RunningRegistry[] = [];
  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
  });
  after(async () => {
    await Promise.all(running.map((r) => r.close()));
    raw?.disconnect();
    await redis?.close();
  });

  test('30,000 expired: a list of 1000 within 2x the latency of a registry without them, and the index swept to the live entries', async () => {
    const N = 30_000;
    const prefix = `hyg-${randomUUID()}:`;
    const live = ['zz-live-1', 'zz-live-2', 'zz-live-3'];
    const t0 = Date.now();
    const expiresAt = t0 + 15_000;
    await fill(redis.url, prefix, N, live, expiresAt);
    const wroteMs = Date.now() - t0;
    assert.ok(Date.now() < expiresAt - 500, `written before they expire (${wroteMs} ms)`);
    assert.equal(await raw.zcard(`${prefix}index`), N + live.length, 'every registration is in the index');

    // The registry under test, with the product's defaults (index swept every second), and one
    // that holds only the same live peers: an empty registry but for what both must list.
    const emptyPrefix = `hyg-empty-${randomUUID()}:`;
    await fill(redis.url, emptyPrefix, 0, live, expiresAt);
    const dirty = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null, redisUrl: redis.url, redisPrefix: prefix });
    const empty = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null, redisUrl: redis.url, redisPrefix: emptyPrefix });
    running.push(dirty, empty);
    for (let i = 0; i < 3; i++) {
      await timedList(empty.url, 'limit=1000'); // warm both up
      await timedList(dirty.url, 'limit=1000&prefix=zz');
    }
    // A record's key expires a few ms after its score says (its TTL counts from when Redis ran the write).
    await sleep(expiresAt - Date.now() + 300);
    // Both counts in one transaction: the registry's sweep (every second) runs between two plain calls.
    const [[, expired], [, indexed]] = (await raw.multi().zcount(`${prefix}expiry`, '-inf', Date.now()).zcard(`${prefix}index`).exec()) as [[null, number], [null, number]];
    assert.equal(expired, indexed - live.length, 'all but the live ones have expired');

    // Side by side, alternating, from the moment they expired.
    const dirtyMs: number[] = [];
    const emptyMs: number[] = [];
    let lastDirty: any;
    for (let i = 0; i < 31; i++) {
      const e = await timedList(empty.url, 'limit=1000');
      assert.equal(e.json.peers.length, live.length);
      emptyMs.push(e.ms);
      const d = await timedList(dirty.url, 'limit=1000');
      dirtyMs.push(d.ms);
      lastDirty = d.json;
    }
    const ratio = median(dirtyMs) / median(emptyMs);
    console.log(`# list limit=1000: 30,000 expired ${median(dirtyMs).toFixed(2)} ms (first ${dirtyMs[0]!.toFixed(2)} ms, max ${Math.max(...dirtyMs).toFixed(2)} ms) vs empty ${median(emptyMs).toFixed(2)} ms: ratio ${ratio.toFixed(2)}; written in ${wroteMs} ms`);
    assert.ok(ratio <= 2, `median ${median(dirtyMs)} ms vs ${median(emptyMs)} ms`);
    assert.deepEqual(lastDirty.peers.map((p: any) => p.name), live);
    assert.equal(lastDirty.next, null);

    // The index holds the live entries again within a couple of sweeps.
    let size = await raw.zcard(`${prefix}index`);
    for (let i = 0; i < 40 && size > live.length; i++) {
      await sleep(100);
      size = await raw.zcard(`${prefix}index`);
    }
    console.log(`# index size ${Date.now() - expiresAt} ms after the expiry: ${size} (expiry set ${await raw.zcard(`${prefix}expiry`)})`);
    assert.equal(size, live.length);
    assert.equal(await raw.zcard(`${prefix}expiry`), live.length);
  });

  test('without the timer: a registration removes a batch, and each list examines a bounded number of expired members and drops them', async () => {
    const N = 5_000;
    const prefix = `hyg-${randomUUID()}:`;
    const expiresAt = Date.now() + 6_000;
    await fill(redis.url, prefix, N, ['zz-live'], expiresAt);
    const reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null, redisUrl: redis.url, redisPrefix: prefix, redisSweepIntervalMs: 0 });
    running.push(reg);
    await sleep(expiresAt - Date.now() + 1000);
    assert.equal(await raw.zcard(`${prefix}index`), N + 1, 'nothing has removed them yet');

    assert.equal((await register(reg.url, { name: 'newcomer', port: 1 })).status, 201);
    assert.equal(await raw.zcard(`${prefix}index`), N + 1 + 1 - 100, 'the registration took 100 expired members out');

    const limit = 100;
    const first = await timedList(reg.url, `limit=${limit}`);
    assert.deepEqual(first.json.peers, [], 'the first page met only expired members');
    assert.notEqual(first.json.next, null, 'and hands back a cursor instead of scanning on');
    const afterOne = await raw.zcard(`${prefix}index`);
    assert.equal(N + 2 - 100 - afterOne, 4 * (limit + 1), 'one page examined (and dropped) 4 x (limit + 1) expired members');

    const names: string[] = [];
    let cursor: string | null = first.json.next;
    let pages = 1;
    while (cursor !== null && pages < 100) {
      const page = await timedList(reg.url, `limit=${limit}&cursor=${cursor}`);
      names.push(...page.json.peers.map((p: any) => p.name));
      cursor = page.json.next;
      pages++;
    }
    assert.deepEqual(names, ['newcomer', 'zz-live']);
    assert.equal(await raw.zcard(`${prefix}index`), 2, 'the walk left only the live entries');
    assert.equal((await call(reg.url, 'GET', `/v1/peers?limit=${limit}`)).json.peers.length, 2);
  });
});
