// The Redis store with a real redis-server: shared state, atomic registration, native TTLs,
// and surviving Redis going away and coming back.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { startRegistry, type RunningRegistry } from '../../src/registry/index';
import { freePort, pingRedis, redisServerAvailable, startRedis, type TestRedis } from '../support/redis';
import { bearer, call, keepAlive, sleep } from './http';

const haveRedis = redisServerAvailable();

describe('registry on a real redis-server', { skip: haveRedis ? false : 'redis-server missing' }, () => {
  let redis: TestRedis;
  let a: RunningRegistry;
  let b: RunningRegistry;
  before(async () => {
    redis = await startRedis();
    a = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null, redisUrl: redis.url });
    b = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null, redisUrl: redis.url });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await redis?.close();
  });

  test('two registry instances share state', async () => {
    const r = await call(a.url, 'POST', '/v1/peers', { name: 'Shared', port: 1234 });
    assert.equal(r.status, 201);
    const g = await call(b.url, 'GET', '/v1/peers/shared');
    assert.equal(g.status, 200);
    assert.equal(g.json.name, 'Shared');
    assert.equal(g.json.port, 1234);
    assert.ok((await call(b.url, 'GET', '/v1/peers?prefix=sha')).json.peers.some((p: any) => p.name === 'Shared'));
    assert.equal((await call(b.url, 'POST', '/v1/peers', { name: 'SHARED', port: 1 })).status, 409);
    assert.equal((await call(b.url, 'POST', '/v1/peers/shared/heartbeat', undefined, bearer(r.json.token))).status, 200);
    assert.equal((await call(b.url, 'DELETE', '/v1/peers/shared', undefined, bearer(r.json.token))).status, 204);
    assert.equal((await call(a.url, 'GET', '/v1/peers/Shared')).status, 404);
  });

  test('40 concurrent registrations of one name through both instances: one 201, 39 409', async () => {
    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        call(i % 2 ? a.url : b.url, 'POST', '/v1/peers', { name: i % 3 ? 'Racer' : 'racer', port: 1000 + i }, {}, { agent: keepAlive }),
      ),
    );
    const statuses = replies.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length, 1, `statuses: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 409).length, 39);
    const winner = replies.find((r) => r.status === 201)!;
    const g = await call(a.url, 'GET', '/v1/peers/racer');
    assert.equal(g.json.port, 1000 + replies.indexOf(winner), 'the stored record is the winner\'s');
  });

  test('every key lives under p2pshare: and peer keys carry a Redis TTL', async () => {
    await call(a.url, 'POST', '/v1/peers', { name: 'ttl-check', port: 1 });
    const raw = new Redis(redis.url, { lazyConnect: false });
    try {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await raw.scan(cursor, 'COUNT', 100);
        keys.push(...batch);
        cursor = next;
      } while (cursor !== '0');
      assert.ok(keys.length >= 3, `keys: ${keys.join(' ')}`);
      for (const k of keys) assert.ok(k.startsWith('p2pshare:'), k);
      const peerKey = 'p2pshare:peer:ttl-check';
      assert.ok(keys.includes(peerKey));
      const ttl = await raw.pttl(peerKey);
      assert.ok(ttl > 0 && ttl <= 30_000, `PTTL ${ttl}`);
      for (const k of keys.filter((k) => k.startsWith('p2pshare:peer:'))) assert.ok((await raw.pttl(k)) > 0, k);
    } finally {
      raw.disconnect();
    }
  });

  test('Redis killed: 503 within 2 s; restarted on the same port: recovers without a registry restart', async () => {
    const before = await call(a.url, 'POST', '/v1/peers', { name: 'survivor', port: 1 });
    assert.equal(before.status, 201);
    await redis.kill();
    assert.equal(await pingRedis(redis.port), false, 'redis really is down');

    for (const [method, path, body] of [
      ['GET', '/healthz', undefined],
      ['GET', '/v1/peers/survivor', undefined],
      ['GET', '/v1/peers', undefined],
      ['POST', '/v1/peers', { name: 'during-outage', port: 1 }],
    ] as const) {
      const t0 = Date.now();
      const r = await call(a.url, method, path, body);
      const ms = Date.now() - t0;
      assert.equal(r.status, 503, `${method} ${path}: ${r.status} ${r.text}`);
      assert.equal(r.json.error.code, 'store_unavailable');
      assert.ok(ms < 2000, `${method} ${path} took ${ms} ms`);
    }
    const hb = await call(b.url, 'POST', '/v1/peers/survivor/heartbeat', undefined, bearer(before.json.token));
    assert.equal(hb.status, 503);
    const metrics = await call(a.url, 'GET', '/metrics');
    assert.equal(metrics.status, 200, 'metrics still answer');
    assert.match(metrics.text, /p2pshare_registry_store_errors_total [1-9]/);

    await redis.restart();
    assert.equal(await pingRedis(redis.port), true);
    for (const reg of [a, b]) {
      const deadline = Date.now() + 10_000;
      let status = 0;
      while (Date.now() < deadline && (status = (await call(reg.url, 'GET', '/healthz')).status) !== 200) await sleep(100);
      assert.equal(status, 200, `${reg.url} recovered`);
    }
    // A fresh Redis forgot everything (no persistence): peers re-register, and it works again.
    const again = await call(a.url, 'POST', '/v1/peers', { name: 'survivor', port: 2 });
    assert.equal(again.status, 201);
    assert.equal((await call(b.url, 'GET', '/v1/peers/survivor')).json.port, 2);
  });

  test('Redis frozen (connected but silent): 503 within 2 s, then answers again once it thaws', async () => {
    assert.equal((await call(a.url, 'POST', '/v1/peers', { name: 'frost', port: 1 })).status, 201);
    redis.freeze();
    try {
      assert.equal(await pingRedis(redis.port, 500), false, 'redis really is silent');
      const t0 = Date.now();
      const r = await call(a.url, 'GET', '/v1/peers/frost');
      const ms = Date.now() - t0;
      assert.equal(r.status, 503, r.text);
      assert.ok(ms < 2000, `took ${ms} ms`);
    } finally {
      redis.thaw();
    }
    const deadline = Date.now() + 10_000;
    let status = 0;
    while (Date.now() < deadline && (status = (await call(a.url, 'GET', '/v1/peers/frost')).status) !== 200) await sleep(100);
    assert.equal(status, 200);
  });

  test('Redis unreachable at start is not fatal: 503 until it comes up', async () => {
    const port = await freePort();
    const reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null, redisUrl: `redis://127.0.0.1:${port}` });
    let late: TestRedis | undefined;
    try {
      assert.equal(reg.store, 'redis');
      assert.equal((await call(reg.url, 'GET', '/healthz')).status, 503);
      assert.equal((await call(reg.url, 'POST', '/v1/peers', { name: 'early', port: 1 })).status, 503);
      late = await startRedis({ port });
      const deadline = Date.now() + 10_000;
      let status = 0;
      while (Date.now() < deadline && (status = (await call(reg.url, 'GET', '/healthz')).status) !== 200) await sleep(100);
      assert.equal(status, 200);
      assert.equal((await call(reg.url, 'POST', '/v1/peers', { name: 'early', port: 1 })).status, 201);
    } finally {
      await reg.close();
      await late?.close();
    }
  });
});
