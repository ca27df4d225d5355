// Every route and status code of the registry API (README.md "The registry API with curl"), on every store (stores.ts), through real HTTP on port 0.
// (Keys, challenges and proofs: keys.test.ts.)
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { before, describe, test } from 'node:test';
import { PrivateKey } from '../../src/core/x25519';
import type { RunningRegistry } from '../../src/registry/index';
import { bearer, call, register, signedBody, sleep } from './http';
import { errorCode, storeCases } from './stores';

const cases = storeCases();

/** A non-loopback IPv4 address of this machine, to be a "remote" client of a 0.0.0.0 registry. */
function externalIpv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

for (const c of cases) {
  describe(`registry API on the ${c.name} store`, { skip: c.skip }, () => {
    let reg: RunningRegistry;
    before(async () => {
      reg = await c.start();
    });

    test('healthz reports the store', async () => {
      const r = await call(reg.url, 'GET', '/healthz');
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, { status: 'ok', store: c.store });
      assert.match(String(r.headers['content-type']), /^application\/json/);
    });

    test('register, look up case-insensitively with its publicKey, 409 for another key, a token on POST changes nothing', async () => {
      const r = await register(reg.url, { name: 'Alice', port: 4000, addresses: ['10.0.0.5'] });
      assert.equal(r.status, 201);
      assert.equal(r.json.name, 'Alice');
      assert.equal(r.json.ttl, 30);
      assert.equal(r.json.observedAddress, '127.0.0.1');
      assert.match(r.json.token, /^[A-Za-z0-9_-]{20,}$/);
      const token: string = r.json.token;
      const aliceKey = r.key.publicKey.toString('base64url');

      const g = await call(reg.url, 'GET', '/v1/peers/ALICE');
      assert.equal(g.status, 200);
      assert.equal(g.json.name, 'Alice');
      assert.equal(g.json.ip, '127.0.0.1');
      assert.equal(g.json.port, 4000);
      assert.deepEqual(g.json.addresses, ['10.0.0.5']);
      assert.equal(g.json.observedAddress, '127.0.0.1');
      assert.equal(g.json.publicKey, aliceKey);
      assert.match(g.json.publicKey, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(Math.abs(Date.parse(g.json.lastSeen) - Date.now()) < 60_000);

      const other = PrivateKey.generate();
      const taken = await register(reg.url, { name: 'alice', port: 4001 }, other);
      assert.equal(taken.status, 409);
      assert.equal(errorCode(taken.json), 'name_taken');
      // Alice's own token on another key's registration: ignored, still 409.
      const withToken = await call(reg.url, 'POST', '/v1/peers', await signedBody(reg.url, { name: 'alice', port: 4001 }, other), bearer(token));
      assert.equal(withToken.status, 409);
      const still = await call(reg.url, 'GET', '/v1/peers/alice');
      assert.equal(still.json.port, 4000);
      assert.equal(still.json.publicKey, aliceKey);
      assert.equal((await call(reg.url, 'POST', '/v1/peers/alice/heartbeat', undefined, bearer(token))).status, 200, 'the owner keeps its token');
    });

    test('400 for every kind of invalid registration, even correctly signed', async () => {
      const bodies: unknown[] = [
        {}, [], 'x', 42, null,
        { name: '', port: 1 }, { name: 'a'.repeat(33), port: 1 }, { name: 'bad name', port: 1 }, { name: 'é', port: 1 },
        { name: 'ok', port: 0 }, { name: 'ok', port: 65536 }, { name: 'ok', port: 1.5 }, { name: 'ok', port: '80' }, { name: 'ok' },
        { name: 'ok', port: 1, ip: 'not-an-ip' }, { name: 'ok', port: 1, ip: 12 },
        { name: 'ok', port: 1, addresses: '10.0.0.1' }, { name: 'ok', port: 1, addresses: ['10.0.0.1', 'nope'] },
        { name: 'ok', port: 1, addresses: Array.from({ length: 9 }, (_, i) => `10.0.0.${i + 1}`) },
      ];
      const key = PrivateKey.generate();
      for (const b of bodies) {
        const signed = typeof b === 'object' && b !== null && !Array.isArray(b) ? await signedBody(reg.url, b as any, key) : b;
        const r = await call(reg.url, 'POST', '/v1/peers', signed);
        assert.equal(r.status, 400, `body ${JSON.stringify(signed)} -> ${r.status} ${r.text}`);
        assert.equal(errorCode(r.json), 'invalid_registration');
      }
      const malformed = await call(reg.url, 'POST', '/v1/peers', '{"name":', {}, { raw: true });
      assert.equal(malformed.status, 400);
      assert.equal(errorCode(malformed.json), 'malformed_json');
      const eight = await register(reg.url, { name: 'eight', port: 1, addresses: Array.from({ length: 8 }, (_, i) => `10.0.0.${i + 1}`) }, key);
      assert.equal(eight.status, 201, 'eight addresses are allowed');
    });

    test('413 for a body over 16 KiB', async () => {
      const big = JSON.stringify({ name: 'big', port: 1, pad: 'x'.repeat(17 * 1024) });
      const r = await call(reg.url, 'POST', '/v1/peers', big, {}, { raw: true });
      assert.equal(r.status, 413);
      assert.equal(errorCode(r.json), 'body_too_large');
      const ok = await call(reg.url, 'GET', '/healthz');
      assert.equal(ok.status, 200);
    });

    test('404 for unknown paths and peers, 405 with Allow for wrong methods', async () => {
      for (const p of ['/', '/v2/peers', '/v1/peers/a/b', '/v1/peers/x/heartbeat/y']) {
        const r = await call(reg.url, 'GET', p);
        assert.equal(r.status, 404, p);
        assert.equal(errorCode(r.json), 'not_found');
      }
      const none = await call(reg.url, 'GET', '/v1/peers/nobody-here');
      assert.equal(none.status, 404);
      assert.equal(errorCode(none.json), 'peer_not_found');
      const invalid = await call(reg.url, 'GET', '/v1/peers/bad%20name');
      assert.equal(invalid.status, 404);
      for (const [method, path, allow] of [
        ['PUT', '/v1/peers', 'GET, POST'],
        ['DELETE', '/v1/peers', 'GET, POST'],
        ['POST', '/v1/peers/x', 'GET, DELETE'],
        ['GET', '/v1/peers/x/heartbeat', 'POST'],
        ['POST', '/healthz', 'GET, HEAD'],
        ['DELETE', '/metrics', 'GET'],
      ] as const) {
        const r = await call(reg.url, method, path);
        assert.equal(r.status, 405, `${method} ${path}`);
        assert.equal(r.headers.allow, allow);
        assert.equal(errorCode(r.json), 'method_not_allowed');
      }
    });

    test('heartbeat: 401 without token, 403 wrong token, 200 right token, 404 unknown', async () => {
      const { json } = await register(reg.url, { name: 'beat', port: 9 });
      const noToken = await call(reg.url, 'POST', '/v1/peers/beat/heartbeat');
      assert.equal(noToken.status, 401);
      assert.equal(errorCode(noToken.json), 'token_required');
      const basic = await call(reg.url, 'POST', '/v1/peers/beat/heartbeat', undefined, { Authorization: 'Basic abc' });
      assert.equal(basic.status, 401);
      const wrong = await call(reg.url, 'POST', '/v1/peers/beat/heartbeat', undefined, bearer('wrongwrongwrong'));
      assert.equal(wrong.status, 403);
      assert.equal(errorCode(wrong.json), 'wrong_token');
      const right = await call(reg.url, 'POST', '/v1/peers/BEAT/heartbeat', undefined, bearer(json.token));
      assert.equal(right.status, 200);
      assert.deepEqual(right.json, { ttl: 30 });
      const unknown = await call(reg.url, 'POST', '/v1/peers/ghost/heartbeat', undefined, bearer(json.token));
      assert.equal(unknown.status, 404);
    });

    test('delete: 401, 403, 204, then 404', async () => {
      const { json } = await register(reg.url, { name: 'leaver', port: 9 });
      assert.equal((await call(reg.url, 'DELETE', '/v1/peers/leaver')).status, 401);
      assert.equal((await call(reg.url, 'DELETE', '/v1/peers/leaver', undefined, bearer('nope-nope'))).status, 403);
      const gone = await call(reg.url, 'DELETE', '/v1/peers/Leaver', undefined, bearer(json.token));
      assert.equal(gone.status, 204);
      assert.equal(gone.text, '');
      assert.equal((await call(reg.url, 'GET', '/v1/peers/leaver')).status, 404);
      assert.equal((await call(reg.url, 'DELETE', '/v1/peers/leaver', undefined, bearer(json.token))).status, 404);
      const again = await register(reg.url, { name: 'leaver', port: 9 });
      assert.equal(again.status, 201, 'a deleted name is free again, for any key');
    });

    test('listing pages with an opaque cursor, filters by prefix, rejects bad parameters', async () => {
      const fresh = await c.start();
      const names = ['Bob', 'bea', 'Carl', 'dora', 'Dan', 'eve', 'Ed', 'frank'];
      const keys = new Map<string, string>();
      for (const name of names) {
        const r = await register(fresh.url, { name, port: 1 });
        assert.equal(r.status, 201);
        keys.set(name, r.key.publicKey.toString('base64url'));
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const q: string = cursor === null ? '?limit=3' : `?limit=3&cursor=${encodeURIComponent(cursor)}`;
        const r = await call(fresh.url, 'GET', `/v1/peers${q}`);
        assert.equal(r.status, 200);
        assert.ok(r.json.peers.length <= 3);
        for (const p of r.json.peers) {
          assert.equal(typeof p.lastSeen, 'string');
          assert.equal(p.publicKey, keys.get(p.name), 'each entry carries its key');
          seen.push(p.name);
        }
        cursor = r.json.next;
        assert.ok(++pages < 10);
      } while (cursor !== null);
      assert.deepEqual([...seen].sort(), [...names].sort(), 'every peer exactly once');
      assert.equal(pages, 3);

      const all = await call(fresh.url, 'GET', '/v1/peers');
      assert.equal(all.json.peers.length, names.length);
      assert.equal(all.json.next, null);
      const d = await call(fresh.url, 'GET', '/v1/peers?prefix=D');
      assert.deepEqual(d.json.peers.map((p: any) => p.name).sort(), ['Dan', 'dora']);
      const b1 = await call(fresh.url, 'GET', '/v1/peers?prefix=b&limit=1');
      assert.equal(b1.json.peers.length, 1);
      const b2 = await call(fresh.url, 'GET', `/v1/peers?prefix=b&limit=1&cursor=${b1.json.next}`);
      assert.equal(b2.json.peers.length, 1);
      assert.notEqual(b2.json.peers[0].name, b1.json.peers[0].name);
      assert.equal(b2.json.next, null);

      for (const q of ['limit=0', 'limit=1001', 'limit=abc', 'limit=-1', 'limit=1.5', 'cursor=garbage!', 'cursor=Zm9v', 'prefix=bad%20prefix', `prefix=${'a'.repeat(33)}`]) {
        const r = await call(fresh.url, 'GET', `/v1/peers?${q}`);
        assert.equal(r.status, 400, q);
        assert.equal(errorCode(r.json), 'invalid_parameters');
      }
      assert.equal((await call(fresh.url, 'GET', '/v1/peers?limit=1000')).status, 200);
    });

    test('metrics: requests by route and status, registrations, live peers, store errors', async () => {
      const fresh = await c.start();
      const m1 = await register(fresh.url, { name: 'm1', port: 1 });
      await register(fresh.url, { name: 'm1', port: 1 });
      await register(fresh.url, { name: 'm1', port: 2 }, m1.key);
      await call(fresh.url, 'GET', '/nowhere');
      const r = await call(fresh.url, 'GET', '/metrics');
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-type']), /^text\/plain/);
      assert.match(r.text, /p2pshare_registry_requests_total\{method="POST",route="\/v1\/peers",status="201"\} 2\n/);
      assert.match(r.text, /p2pshare_registry_requests_total\{method="GET",route="\/v1\/challenge",status="200"\} 3\n/);
      assert.match(r.text, /p2pshare_registry_requests_total\{method="POST",route="\/v1\/peers",status="409"\} 1\n/);
      assert.match(r.text, /p2pshare_registry_requests_total\{method="GET",route="unknown",status="404"\} 1\n/);
      assert.match(r.text, /p2pshare_registry_registrations_total 1\n/);
      assert.match(r.text, /p2pshare_registry_reclaims_total 1\n/);
      assert.match(r.text, new RegExp(`p2pshare_registry_live_peers\\{store="${c.store}"\\} 1\\n`));
      assert.match(r.text, /p2pshare_registry_store_errors_total 0\n/);
    });

    test('a registration expires after its TTL and the name can be registered again', async () => {
      const short = await c.start(1);
      // A heartbeat within the TTL keeps a name alive past its first deadline. The check needs
      // the heartbeat sent before that deadline and the lookup answered within a TTL of the
      // heartbeat; a loaded machine can stall a step past either window, and then the attempt
      // proves nothing and is made again under a new name (timings from this side bound the
      // registry's: it stamps a request between our send and our receipt).
      let first: Awaited<ReturnType<typeof register>> | undefined;
      let name = '';
      for (let attempt = 0; attempt < 5 && !first; attempt++) {
        name = `brief${attempt}`;
        const registered = Date.now();
        const r = await register(short.url, { name, port: 1 });
        assert.equal(r.status, 201);
        assert.equal(r.json.ttl, 1);
        const answered = Date.now();
        const taken = await register(short.url, { name, port: 2 });
        if (Date.now() >= registered + 1000) continue; // the name may have expired before this
        assert.equal(taken.status, 409);
        await sleep(Math.max(0, registered + 600 - Date.now()));
        const beatSent = Date.now();
        const beat = await call(short.url, 'POST', `/v1/peers/${name}/heartbeat`, undefined, bearer(r.json.token));
        if (Date.now() >= registered + 1000) continue; // the heartbeat may have come after the deadline
        assert.equal(beat.status, 200);
        await sleep(Math.max(0, answered + 1050 - Date.now())); // past the first deadline
        const lookup = await call(short.url, 'GET', `/v1/peers/${name}`);
        if (Date.now() >= beatSent + 1000) continue; // the lookup may have come after the renewed deadline
        assert.equal(lookup.status, 200, 'kept alive by the heartbeat');
        first = r;
      }
      assert.ok(first, 'five attempts all stalled past their windows');
      await sleep(1600); // past the renewed deadline, and every stalled attempt's too
      assert.equal((await call(short.url, 'GET', `/v1/peers/${name}`)).status, 404);
      assert.equal((await call(short.url, 'POST', `/v1/peers/${name}/heartbeat`, undefined, bearer(first.json.token))).status, 404);
      const list = await call(short.url, 'GET', '/v1/peers');
      assert.deepEqual(list.json.peers, []);
      const second = await register(short.url, { name: name.toUpperCase(), port: 2 });
      assert.equal(second.status, 201);
      assert.notEqual(second.json.token, first.json.token);
      assert.equal(second.json.name, name.toUpperCase());
    });

    test('a client that sends its request and shuts down its side still gets the answer, then the close', async () => {
      await register(reg.url, { name: 'halfway', port: 9 });
      const { port } = new URL(reg.url);
      for (const path of ['/v1/peers/halfway', '/v1/peers/nobody-here', '/v1/peers?limit=5', '/healthz']) {
        const socket = connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
        socket.setEncoding('utf8');
        let text = '';
        socket.on('data', (d: string) => (text += d));
        socket.on('connect', () => socket.end(`GET ${path} HTTP/1.1\r\nHost: registry\r\n\r\n`)); // the FIN follows the request at once
        const how = await new Promise<string>((resolve) => {
          socket.on('end', () => resolve('end'));
          socket.on('close', () => resolve('close'));
          setTimeout(() => resolve('nothing within 5 s'), 5000).unref();
        });
        socket.destroy();
        assert.equal(how, 'end', `${path}: the server closes its side after the answer`);
        assert.match(text, path === '/v1/peers/nobody-here' ? /^HTTP\/1\.1 404 / : /^HTTP\/1\.1 200 /, `${path}: ${JSON.stringify(text.slice(0, 80))}`);
        assert.match(text, /\r\n\r\n\{/, `${path}: a JSON body`);
      }
    });

    test('a loopback ip claimed by a loopback client is kept', async () => {
      const r = await register(reg.url, { name: 'local', port: 7, ip: '127.0.1.1', addresses: ['::1'] });
      assert.equal(r.status, 201);
      const g = await call(reg.url, 'GET', '/v1/peers/local');
      assert.equal(g.json.ip, '127.0.1.1');
      assert.deepEqual(g.json.addresses, ['::1']);
    });

    const ext = externalIpv4();
    test('a loopback ip claimed by a non-loopback client is replaced by the observed address', { skip: ext ? false : 'no non-loopback IPv4 interface on this machine' }, async () => {
      const wide = await c.start(30, '0.0.0.0');
      const base = `http://${ext}:${wide.port}`;
      const r = await register(base, { name: 'remote', port: 7, ip: '127.0.1.1', addresses: ['127.0.0.1', '10.9.8.7'] }, undefined, { localAddress: ext! });
      assert.equal(r.status, 201);
      assert.equal(r.json.observedAddress, ext);
      const g = await call(base, 'GET', '/v1/peers/remote');
      assert.equal(g.json.ip, ext);
      assert.deepEqual(g.json.addresses, [ext, '10.9.8.7']);
      const noIp = await register(base, { name: 'remote2', port: 7 }, undefined, { localAddress: ext! });
      assert.equal(noIp.status, 201);
      assert.equal((await call(base, 'GET', '/v1/peers/remote2')).json.ip, ext);
    });
  });
}
