// Per-client limits and the store caps, on every store case (stores.ts), with 127.0.0.x source addresses as
// distinct clients: registrations and challenges per minute (429 with Retry-After), live names per
// client, --max-peers; and a squatting attack from several addresses with the default limits while
// a fresh client registers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { join } from 'node:path';
import { DEFAULT_LIMITS } from '../../src/registry/limits';
import { connectRedis, parseRedisTarget } from '../../src/registry/redis-connection';
import { RedisKeys } from '../../src/registry/redis-keys';
import { startTsChild } from '../support/cli';
import { bearer, call, register, sleep } from './http';
import { errorCode, storeCases } from './stores';

const cases = storeCases();
const ATTACKER = join(__dirname, 'squat-attacker.ts');
const from = (n: number) => ({ localAddress: `127.0.0.${n}` });

function retryAfter(r: { headers: Record<string, unknown> }): number {
  const v = String(r.headers['retry-after']);
  assert.match(v, /^\d+$/, `Retry-After: ${v}`);
  return Number(v);
}

for (const c of cases) {
  describe(`limits on the ${c.name} store`, { skip: c.skip }, () => {
    test('registrations per minute: the 4th POST of a client gets 429 with Retry-After; other clients and lookups go on', async () => {
      const reg = await c.start(30, '127.0.0.1', { limits: { registrationsPerMinute: 3 } });
      for (let i = 0; i < 3; i++) assert.equal((await register(reg.url, { name: `burst-${i}`, port: 1 }, undefined, from(2))).status, 201);
      const over = await register(reg.url, { name: 'burst-3', port: 1 }, undefined, from(2));
      assert.equal(over.status, 429, over.text);
      assert.equal(errorCode(over.json), 'rate_limited');
      assert.match(over.json.error.message, /at most 3 a minute/);
      const wait = retryAfter(over);
      assert.ok(wait >= 1 && wait <= 20, `one token comes back within 60/3 s: Retry-After ${wait}`);
      // Even an invalid body is charged: the limit comes before any work on the body.
      assert.equal((await call(reg.url, 'POST', '/v1/peers', { name: 'x' }, {}, from(2))).status, 429);
      assert.equal((await register(reg.url, { name: 'other-client', port: 1 }, undefined, from(3))).status, 201, 'another address has its own bucket');
      assert.equal((await call(reg.url, 'GET', '/v1/peers/burst-0', undefined, {}, from(2))).status, 200, 'lookups are not limited');
      assert.equal((await call(reg.url, 'GET', '/v1/peers/burst-3')).status, 404);
      const metrics = await call(reg.url, 'GET', '/metrics');
      assert.match(metrics.text, /p2pshare_registry_events_total\{reason="registrations_per_ip"\} 2\n/);
      assert.match(metrics.text, /p2pshare_registry_requests_total\{method="POST",route="\/v1\/peers",status="429"\} 2\n/);
    });

    test('challenges per minute: the 4th GET /v1/challenge of a client gets 429 with Retry-After', async () => {
      const reg = await c.start(30, '127.0.0.1', { limits: { challengesPerMinute: 3 } });
      for (let i = 0; i < 3; i++) assert.equal((await call(reg.url, 'GET', '/v1/challenge', undefined, {}, from(4))).status, 200);
      const over = await call(reg.url, 'GET', '/v1/challenge', undefined, {}, from(4));
      assert.equal(over.status, 429);
      assert.equal(errorCode(over.json), 'rate_limited');
      assert.ok(retryAfter(over) >= 1);
      assert.equal((await call(reg.url, 'GET', '/v1/challenge', undefined, {}, from(5))).status, 200);
    });

    test('live names per client: past --max-names-per-ip 429 too_many_names; reclaims, deletions and expiry make room', async () => {
      const reg = await c.start(2, '127.0.0.1', { limits: { maxNamesPerIp: 3 } });
      const mine = [];
      for (let i = 0; i < 3; i++) {
        const r = await register(reg.url, { name: `squat-${i}`, port: 1 }, undefined, from(6));
        assert.equal(r.status, 201);
        mine.push(r);
      }
      const over = await register(reg.url, { name: 'squat-3', port: 1 }, undefined, from(6));
      assert.equal(over.status, 429, over.text);
      assert.equal(errorCode(over.json), 'too_many_names');
      assert.match(over.json.error.message, /127\.0\.0\.6 already holds 3 live names/);
      assert.ok(retryAfter(over) <= 2, 'the first of its names expires within the TTL');
      assert.equal((await register(reg.url, { name: 'squat-0', port: 2 }, mine[0]!.key, from(6))).status, 201, 'a reclaim by the same key is no new name');
      assert.equal((await register(reg.url, { name: 'neighbour', port: 1 }, undefined, from(7))).status, 201, 'another client is not affected');
      // A name moved to another client by its key counts there, not here any more.
      const moved = await register(reg.url, { name: 'squat-1', port: 1 }, mine[1]!.key, from(7));
      assert.equal(moved.status, 201);
      assert.equal((await register(reg.url, { name: 'squat-3', port: 1 }, undefined, from(6))).status, 201, 'room made by the move');
      assert.equal((await register(reg.url, { name: 'squat-4', port: 1 }, undefined, from(6))).status, 429);
      const gone = await register(reg.url, { name: 'squat-2', port: 1 }, mine[2]!.key, from(6));
      assert.equal((await call(reg.url, 'DELETE', '/v1/peers/squat-2', undefined, bearer(gone.json.token))).status, 204);
      assert.equal((await register(reg.url, { name: 'squat-4', port: 1 }, undefined, from(6))).status, 201, 'room made by the deletion');
      await sleep(2300);
      for (let i = 5; i < 8; i++) assert.equal((await register(reg.url, { name: `squat-${i}`, port: 1 }, undefined, from(6))).status, 201, 'room made by expiry');
    });

    test('--max-peers: a new name past the cap gets 503 registry_full; reclaims still work; a deletion makes room', async () => {
      const reg = await c.start(30, '127.0.0.1', { limits: { maxPeers: 3 } });
      const r = [];
      for (let i = 0; i < 3; i++) {
        r.push(await register(reg.url, { name: `full-${i}`, port: 1 }, undefined, from(8 + i)));
        assert.equal(r[i]!.status, 201);
      }
      const over = await register(reg.url, { name: 'full-3', port: 1 }, undefined, from(11));
      assert.equal(over.status, 503);
      assert.equal(errorCode(over.json), 'registry_full');
      assert.match(over.json.error.message, /maximum of 3 peers/);
      assert.ok(retryAfter(over) >= 1);
      assert.equal((await register(reg.url, { name: 'full-0', port: 9 }, r[0]!.key, from(8))).status, 201, 'reclaim at the cap');
      assert.equal((await call(reg.url, 'DELETE', '/v1/peers/full-1', undefined, bearer(r[1]!.json.token))).status, 204);
      assert.equal((await register(reg.url, { name: 'full-3', port: 1 }, undefined, from(11))).status, 201);
      assert.match((await call(reg.url, 'GET', '/metrics')).text, new RegExp(`p2pshare_registry_live_peers\\{store="${c.store}"\\} 3\\n`));
    });

    test('squatting from 6 addresses with the default limits: each gets at most its burst of names; a fresh client registers within 2 s meanwhile', async (t) => {
      const reg = await c.start();
      const perAttacker = 100;
      const attackers = [20, 21, 22, 23, 24, 25];
      const attacker = await startTsChild(ATTACKER, [reg.url, attackers.map((a) => `127.0.0.${a}`).join(','), String(perAttacker)], /^flooding$/, 30_000);
      t.after(() => attacker.stop('SIGKILL'));
      const t0 = Date.now();
      await sleep(50); // the flood is under way
      const l0 = Date.now();
      const legit = await register(reg.url, { name: 'legit-during-squat', port: 4000 }, undefined, from(99));
      const legitMs = Date.now() - l0;
      const lookup = await call(reg.url, 'GET', '/v1/peers/legit-during-squat', undefined, {}, from(98));
      const lookupMs = Date.now() - l0 - legitMs;
      const byAddress = JSON.parse((await attacker.waitForLine(/^\{.*\}$/, 60_000))[0]) as Record<string, number[]>;
      const statuses = attackers.map((a) => byAddress[`127.0.0.${a}`]!);
      const seconds = (Date.now() - t0) / 1000;
      assert.equal(legit.status, 201, legit.text);
      assert.equal(lookup.status, 200);
      assert.ok(legitMs < 2000, `the fresh client registered in ${legitMs} ms`);
      assert.ok(lookupMs < 2000, `and was looked up in ${lookupMs} ms`);
      const burst = DEFAULT_LIMITS.registrationsPerMinute;
      for (const [i, s] of statuses.entries()) {
        const created = s.filter((x) => x === 201).length;
        const refused = s.filter((x) => x === 429).length;
        assert.ok(created <= burst + Math.ceil(seconds * burst / 60), `attacker ${attackers[i]}: ${created} names in ${seconds} s`);
        assert.ok(created >= burst - 1, `attacker ${attackers[i]}: got its burst (${created})`);
        assert.equal(created + refused, perAttacker, `every other attempt was refused with 429: ${JSON.stringify(s)}`);
      }
      console.log(`# squat: ${statuses.map((s) => s.filter((x) => x === 201).length).join('/')} names per attacker in ${seconds} s; fresh client registered in ${legitMs} ms, looked up in ${lookupMs} ms`);
    });

    if (c.store === 'redis') {
      test('with Redis, names per client are counted across registries, and kept in one expiring set per client', async () => {
        const prefix = `shared-${Date.now()}:`;
        const a = await c.start(30, '127.0.0.1', { limits: { maxNamesPerIp: 2 }, redisPrefix: prefix });
        const b = await c.start(30, '127.0.0.1', { limits: { maxNamesPerIp: 2 }, redisPrefix: prefix });
        assert.equal((await register(a.url, { name: 'two-a', port: 1 }, undefined, from(30))).status, 201);
        assert.equal((await register(b.url, { name: 'two-b', port: 1 }, undefined, from(30))).status, 201);
        assert.equal((await register(a.url, { name: 'two-c', port: 1 }, undefined, from(30))).status, 429);
        assert.equal((await register(b.url, { name: 'two-c', port: 1 }, undefined, from(30))).status, 429);
        // The set's name as the store lays it out (on a cluster: hash-tagged, read by a Cluster client).
        const target = parseRedisTarget(c.redisUrl!());
        const set = new RedisKeys(prefix, target.kind === 'cluster').client('127.0.0.30');
        const raw = connectRedis(target, { queue: true });
        try {
          assert.deepEqual((await raw.zrange(set, '0', '-1')).sort(), ['two-a', 'two-b']);
          const pttl = await raw.pttl(set);
          assert.ok(pttl > 0 && pttl <= 30_000, `the set expires with its last name: PTTL ${pttl}`);
        } finally {
          raw.disconnect();
        }
      });
    }
  });
}
