// Names bound to keys (README.md, "The registry API with curl"), on every store (stores.ts) through real
// HTTP: challenges, proofs refused for every reason with the right status, reclaiming by the same key.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { PrivateKey } from '../../src/core/x25519';
import type { RunningRegistry } from '../../src/registry/index';
import { bearer, call, register, signedBody, sleep } from './http';
import { errorCode, storeCases } from './stores';

const cases = storeCases();

for (const c of cases) {
  describe(`keys at the registry on the ${c.name} store`, { skip: c.skip }, () => {
    let reg: RunningRegistry;
    before(async () => {
      reg = await c.start();
    });

    test('the same key reclaims a live name at once: record replaced, new token, the old one refused', async () => {
      const first = await register(reg.url, { name: 'Olive', port: 5000, addresses: ['10.0.0.9'] });
      assert.equal(first.status, 201);
      const again = await register(reg.url, { name: 'olive', port: 5001, ip: '10.1.2.3' }, first.key);
      assert.equal(again.status, 201, again.text);
      assert.equal(again.json.name, 'Olive', 'the name as first registered stays');
      assert.match(again.json.token, /^[A-Za-z0-9_-]{20,}$/);
      assert.notEqual(again.json.token, first.json.token);
      const g = await call(reg.url, 'GET', '/v1/peers/olive');
      assert.equal(g.json.port, 5001);
      assert.equal(g.json.ip, '10.1.2.3');
      assert.deepEqual(g.json.addresses, [], 'every field replaced, not merged');
      assert.equal(g.json.publicKey, first.key.publicKey.toString('base64url'));

      const oldBeat = await call(reg.url, 'POST', '/v1/peers/olive/heartbeat', undefined, bearer(first.json.token));
      assert.equal(oldBeat.status, 403);
      assert.equal(errorCode(oldBeat.json), 'wrong_token');
      assert.equal((await call(reg.url, 'DELETE', '/v1/peers/olive', undefined, bearer(first.json.token))).status, 403);
      assert.equal((await call(reg.url, 'GET', '/v1/peers/olive')).status, 200, 'the old token deleted nothing');
      assert.equal((await call(reg.url, 'POST', '/v1/peers/olive/heartbeat', undefined, bearer(again.json.token))).status, 200);
      assert.equal((await register(reg.url, { name: 'OLIVE', port: 5002 })).status, 409, 'another key still gets 409');
      assert.equal((await call(reg.url, 'DELETE', '/v1/peers/olive', undefined, bearer(again.json.token))).status, 204);
    });

    test('GET /v1/challenge: 40 bytes with their expiry 60 s ahead, the registry key, a new challenge each time', async () => {
      const t0 = Date.now();
      const a = await call(reg.url, 'GET', '/v1/challenge');
      const b = await call(reg.url, 'GET', '/v1/challenge');
      assert.equal(a.status, 200);
      assert.match(String(a.headers['content-type']), /^application\/json/);
      assert.deepEqual(Object.keys(a.json).sort(), ['challenge', 'expires', 'registryKey', 'rendezvous']);
      assert.match(a.json.challenge, /^[A-Za-z0-9_-]{54}$/);
      const bytes = Buffer.from(a.json.challenge, 'base64url');
      assert.equal(bytes.length, 40);
      const expiry = Number(bytes.readBigUInt64BE(0));
      assert.equal(new Date(expiry).toISOString(), a.json.expires);
      assert.ok(expiry >= t0 + 59_000 && expiry <= Date.now() + 60_000, `expires ${a.json.expires}`);
      assert.match(a.json.registryKey, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(b.json.registryKey, a.json.registryKey, 'one registry key');
      assert.notEqual(b.json.challenge, a.json.challenge);
      const other = await c.start();
      assert.notEqual((await call(other.url, 'GET', '/v1/challenge')).json.registryKey, a.json.registryKey, 'another deployment, another key');
      assert.equal((await call(reg.url, 'POST', '/v1/challenge')).status, 405);
    });

    test('401 challenge_expired for an expired, altered, foreign or already used challenge', async () => {
      const quick = await c.start(30, '127.0.0.1', { challengeTtlMs: 300 });
      const key = PrivateKey.generate();
      const late = await signedBody(quick.url, { name: 'late', port: 1 }, key);
      await sleep(400);
      const expired = await call(quick.url, 'POST', '/v1/peers', late);
      assert.equal(expired.status, 401);
      assert.equal(errorCode(expired.json), 'challenge_expired');
      assert.match(expired.json.error.message, /expired/);
      assert.equal((await register(quick.url, { name: 'late', port: 1 }, key)).status, 201, 'a fresh challenge works');

      const body = await signedBody(reg.url, { name: 'tamper', port: 1 }, key);
      const bytes = Buffer.from(body.proof.challenge, 'base64url');
      for (const at of [0, 7, 8, 23, 24, 39]) {
        const altered = Buffer.from(bytes);
        altered[at]! ^= 1;
        const r = await call(reg.url, 'POST', '/v1/peers', { ...body, proof: { ...body.proof, challenge: altered.toString('base64url') } });
        assert.equal(r.status, 401, `byte ${at}`);
        assert.equal(errorCode(r.json), 'challenge_expired');
      }
      const foreign = await signedBody(quick.url, { name: 'tamper', port: 1 }, key);
      const r = await call(reg.url, 'POST', '/v1/peers', foreign);
      assert.equal(r.status, 401, 'a challenge of another deployment');
      assert.equal(errorCode(r.json), 'challenge_expired');

      assert.equal((await call(reg.url, 'POST', '/v1/peers', body)).status, 201);
      const replay = await call(reg.url, 'POST', '/v1/peers', body);
      assert.equal(replay.status, 401, 'a replayed registration would take the token away from its owner');
      assert.equal(errorCode(replay.json), 'challenge_expired');
      assert.match(replay.json.error.message, /already used/);
    });

    test('403 invalid_proof for a wrong mac, another key, or any signed field changed after signing', async () => {
      const key = PrivateKey.generate();
      const fields = { name: 'Signed', port: 4000, ip: '10.0.0.1', addresses: ['10.0.0.2'] };
      const body = await signedBody(reg.url, fields, key);
      const mac = Buffer.from(body.proof.mac, 'base64url');
      const flipped = Buffer.from(mac);
      flipped[31]! ^= 0x80;
      const otherKey = PrivateKey.generate().publicKey.toString('base64url');
      const variants: Array<[string, object]> = [
        ['mac bit flipped', { ...body, proof: { ...body.proof, mac: flipped.toString('base64url') } }],
        ['mac of zeros', { ...body, proof: { ...body.proof, mac: Buffer.alloc(32).toString('base64url') } }],
        ['another publicKey', { ...body, publicKey: otherKey }],
        ['port', { ...body, port: 4001 }],
        ['ip', { ...body, ip: '10.0.0.3' }],
        ['ip dropped', { ...body, ip: undefined }],
        ['name', { ...body, name: 'signed2' }],
        ['name in other case', { ...body, name: 'signed' }],
        ['addresses', { ...body, addresses: ['10.0.0.2', '10.0.0.4'] }],
        ['addresses dropped', { ...body, addresses: undefined }],
      ];
      for (const [what, v] of variants) {
        const r = await call(reg.url, 'POST', '/v1/peers', v);
        assert.equal(r.status, 403, `${what}: ${r.status} ${r.text}`);
        assert.equal(errorCode(r.json), 'invalid_proof');
      }
      assert.equal((await call(reg.url, 'GET', '/v1/peers/signed')).status, 404, 'nothing registered');
      assert.equal((await call(reg.url, 'POST', '/v1/peers', body)).status, 201, 'the untouched body, its challenge unused so far');
    });

    test('400 key_required without publicKey or proof; 400 for malformed ones', async () => {
      const body = await signedBody(reg.url, { name: 'keyless', port: 1 }, PrivateKey.generate());
      for (const v of [{ name: 'keyless', port: 1 }, { ...body, publicKey: undefined }, { ...body, proof: undefined }, { ...body, publicKey: null }, { ...body, proof: null }]) {
        const r = await call(reg.url, 'POST', '/v1/peers', v);
        assert.equal(r.status, 400, JSON.stringify(v));
        assert.equal(errorCode(r.json), 'key_required');
        assert.match(r.json.error.message, /challenge/);
      }
      const key = body.publicKey;
      // The last of 43 characters carries 2 unused low bits: setting one spells the same key otherwise.
      const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const nonCanonical = key.slice(0, 42) + B64URL[B64URL.indexOf(key[42]!) ^ 1];
      assert.ok(Buffer.from(nonCanonical, 'base64url').equals(Buffer.from(key, 'base64url')));
      const malformed: object[] = [
        { ...body, publicKey: key.slice(0, 42) }, { ...body, publicKey: `${key}A` }, { ...body, publicKey: `${key}=` },
        { ...body, publicKey: `${key.slice(0, 41)}+/` }, { ...body, publicKey: nonCanonical }, { ...body, publicKey: 42 },
        { ...body, publicKey: [key] }, { ...body, proof: [body.proof.challenge, body.proof.mac] }, { ...body, proof: 'x' },
        { ...body, proof: { mac: body.proof.mac } }, { ...body, proof: { challenge: body.proof.challenge } },
        { ...body, proof: { ...body.proof, challenge: body.proof.challenge.slice(0, 53) } },
        { ...body, proof: { ...body.proof, mac: body.proof.mac.slice(0, 42) } }, { ...body, proof: { ...body.proof, mac: 1 } },
        { ...body, publicKey: Buffer.alloc(32).toString('base64url') }, // small order: no shared secret
      ];
      for (const v of malformed) {
        const r = await call(reg.url, 'POST', '/v1/peers', v);
        assert.equal(r.status, 400, `${JSON.stringify(v)} -> ${r.status} ${r.text}`);
        assert.equal(errorCode(r.json), 'invalid_registration');
      }
      assert.equal((await call(reg.url, 'POST', '/v1/peers', body)).status, 201);
    });
  });
}
