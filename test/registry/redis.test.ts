// The Redis store with a real redis-server: shared state, atomic registration, native TTLs,
// and surviving Redis going away and coming back.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { PrivateKey } from '../../src/core/x25519';
import { startRegistry, type RunningRegistry } from '../../src/registry/index';
import { freePort, pingRedis, redisServerAvailable, startRedis, type TestRedis } from '../support/redis';
import { bearer, call, keepAlive, register, signedBody, sleep } from './http';

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
    const r = await register(a.url, { name: 'Shared', port: 1234 });
    assert.equal(r.status, 201);
    const key = r.key.publicKey.toString('base64url');
    const g = await call(b.url, 'GET', '/v1/peers/shared');
    assert.equal(g.status, 200);
    assert.equal(g.json.name, 'Shared');
    assert.equal(g.json.port, 1234);
    assert.equal(g.json.publicKey, key);
    assert.ok((await call(b.url, 'GET', '/v1/peers?prefix=sha')).json.peers.some((p: any) => p.name === 'Shared' && p.publicKey === key));
    assert.equal((await register(b.url, { name: 'SHARED', port: 1 })).status, 409);
    assert.equal((await call(b.url, 'POST', '/v1/peers/shared/heartbeat', undefined, bearer(r.json.token))).status, 200);
    // Reclaimed through the other instance: the first token is dead everywhere.
    const again = await register(b.url, { name: 'shared', port: 1235 }, r.key);
    assert.equal(again.status, 201);
    assert.equal((await call(a.url, 'GET', '/v1/peers/shared')).json.port, 1235);
    assert.equal((await call(a.url, 'POST', '/v1/peers/shared/heartbeat', undefined, bearer(r.json.token))).status, 403);
    assert.equal((await call(a.url, 'DELETE', '/v1/peers/shared', undefined, bearer(r.json.token))).status, 403);
    assert.equal((await call(a.url, 'DELETE', '/v1/peers/shared', undefined, bearer(again.json.token))).status, 204);
    assert.equal((await call(a.url, 'GET', '/v1/peers/Shared')).status, 404);
  });

  test('one secret for all registries on the Redis: a challenge from one serves at the other, once', async () => {
    const ka = (await call(a.url, 'GET', '/v1/challenge')).json.registryKey;
    const kb = (await call(b.url, 'GET', '/v1/challenge')).json.registryKey;
    assert.equal(ka, kb, 'the same registry key');
    const body = await signedBody(a.url, { name: 'crossed', port: 7 }, PrivateKey.generate());
    const r = await call(b.url, 'POST', '/v1/peers', body);
    assert.equal(r.status, 201, r.text);
    const replay = await call(a.url, 'POST', '/v1/peers', body);
    assert.equal(replay.status, 401, 'used at b, refused at a');
    assert.equal(replay.json.error.code, 'challenge_expired');
    // A registry started later reads the same secret.
    const late = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null, redisUrl: redis.url });
    try {
      assert.equal((await call(late.url, 'GET', '/v1/challenge')).json.registryKey, ka);
    } finally {
      await late.close();
    }
    // ... and one under another prefix is another deployment.
    const other = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null, redisUrl: redis.url, redisPrefix: 'other:' });
    const raw = new Redis(redis.url);
    try {
      assert.notEqual((await call(other.url, 'GET', '/v1/challenge')).json.registryKey, ka);
    } finally {
      await other.close();
      await raw.del('other:secret'); // the only key it wrote; the layout test wants p2pshare: only
      raw.disconnect();
    }
  });

  test('40 concurrent registrations of one name by 40 keys through both instances: one 201, 39 409', async () => {
    // Signed first, so that the 40 POSTs really are concurrent.
    const keys = Array.from({ length: 40 }, () => PrivateKey.generate());
    const bodies = await Promise.all(keys.map((k, i) => signedBody(i % 2 ? b.url : a.url, { name: i % 3 ? 'Racer' : 'racer', port: 1000 + i }, k)));
    const replies = await Promise.all(bodies.map((body, i) => call(i % 2 ? a.url : b.url, 'POST', '/v1/peers', body, {}, { agent: keepAlive })));
    const statuses = replies.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length, 1, `statuses: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 409).length, 39);
    const winner = replies.findIndex((r) => r.status === 201);
    const g = await call(a.url, 'GET', '/v1/peers/racer');
    assert.equal(g.json.port, 1000 + winner, 'the stored record is the winner\'s');
    assert.equal(g.json.publicKey, keys[winner]!.publicKey.toString('base64url'));
  });

  test('20 concurrent reclaims by one key: all 201, and exactly one token (the stored one) owns the name', async () => {
    const key = PrivateKey.generate();
    assert.equal((await register(a.url, { name: 'reclaimed', port: 999 }, key)).status, 201);
    const bodies = await Promise.all(Array.from({ length: 20 }, (_, i) => signedBody(i % 2 ? a.url : b.url, { name: 'reclaimed', port: 2000 + i }, key)));
    const replies = await Promise.all(bodies.map((body, i) => call(i % 2 ? b.url : a.url, 'POST', '/v1/peers', body, {}, { agent: keepAlive })));
    assert.deepEqual(replies.map((r) => r.status), replies.map(() => 201));
    const beats = await Promise.all(replies.map((r) => call(a.url, 'POST', '/v1/peers/reclaimed/heartbeat', undefined, bearer(r.json.token))));
    const owners = beats.flatMap((beat, i) => (beat.status === 200 ? [i] : []));
    assert.equal(owners.length, 1, `heartbeats: ${beats.map((x) => x.status).join(',')}`);
    assert.ok(beats.every((x) => x.status === 200 || x.status === 403));
    assert.equal((await call(b.url, 'GET', '/v1/peers/reclaimed')).json.port, 2000 + owners[0]!, 'the owning token is the one of the stored record');
  });

  test('every key lives under p2pshare: and peer keys carry a Redis TTL', async () => {
    await register(a.url, { name: 'ttl-check', port: 1 });
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
      const used = keys.filter((k) => k.startsWith('p2pshare:used:'));
      assert.ok(used.length > 0, 'used challenges are remembered');
      for (const k of used) {
        const t = await raw.pttl(k);
        assert.ok(t > 0 && t <= 60_000, `${k}: used challenges are forgotten when they expire (PTTL ${t})`);
      }
      assert.match((await raw.get('p2pshare:secret')) ?? '', /^[0-9a-f]{64}$/);
    } finally {
      raw.disconnect();
    }
  });

  test('Redis killed: 503 within 2 s; restarted on the same port: recovers without a registry restart', async () => {
    const before = await register(a.url, { name: 'survivor', port: 1 });
    const secretBefore = (await call(a.url, 'GET', '/v1/challenge')).json.registryKey;
    const staleBody = await signedBody(a.url, { name: 'stale', port: 1 }, PrivateKey.generate());
    assert.equal(before.status, 201);
    await redis.kill();
    assert.equal(await pingRedis(redis.port), false, 'redis really is down');

    for (const [method, path, body] of [
      ['GET', '/healthz', undefined],
      ['GET', '/v1/peers/survivor', undefined],
      ['GET', '/v1/peers', undefined],
      ['GET', '/v1/challenge', undefined],
      ['POST', '/v1/peers', { ...staleBody, name: 'during-outage' }],
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
    const again = await register(a.url, { name: 'survivor', port: 2 }, before.key);
    assert.equal(again.status, 201);
    assert.equal((await call(b.url, 'GET', '/v1/peers/survivor')).json.port, 2);
    // It forgot the secret too: a new one, which both registries use at once (not each its old copy),
    // and a challenge of the old one is refused.
    const ka = (await call(a.url, 'GET', '/v1/challenge')).json.registryKey;
    assert.notEqual(ka, secretBefore);
    assert.equal((await call(b.url, 'GET', '/v1/challenge')).json.registryKey, ka);
    assert.equal((await call(b.url, 'POST', '/v1/peers', await signedBody(a.url, { name: 'after', port: 1 }, PrivateKey.generate()))).status, 201);
    const stale = await call(b.url, 'POST', '/v1/peers', staleBody);
    assert.equal(stale.status, 401);
    assert.equal(stale.json.error.code, 'challenge_expired');
  });

  test('Redis frozen (connected but silent): 503 within 2 s, then answers again once it thaws', async () => {
    assert.equal((await register(a.url, { name: 'frost', port: 1 })).status, 201);
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
      assert.equal((await call(reg.url, 'GET', '/v1/challenge')).status, 503);
      const key = PrivateKey.generate();
      const early = await call(reg.url, 'POST', '/v1/peers', { name: 'early', port: 1, publicKey: key.publicKey.toString('base64url'), proof: { challenge: 'A'.repeat(54), mac: 'A'.repeat(43) } });
      assert.equal(early.status, 503);
      late = await startRedis({ port });
      const deadline = Date.now() + 10_000;
      let status = 0;
      while (Date.now() < deadline && (status = (await call(reg.url, 'GET', '/healthz')).status) !== 200) await sleep(100);
      assert.equal(status, 200);
      assert.equal((await register(reg.url, { name: 'early', port: 1 }, key)).status, 201);
    } finally {
      await reg.close();
      await late?.close();
    }
  });
});
