// KEEPALIVE at the registry's UDP port, on every store (stores.ts): accepted only with the registration's mac
// and a sequence above the last one; the mapping it records in GET /v1/peers/{name}; its expiry.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeKeepalive, rendezvousKey } from '../../src/wire/rendezvous';
import { bearer, call, register, sleep } from './http';
import { storeCases } from './stores';
import { UdpPeer, keepalive, registerPeer, rendezvousCounters } from './udp-peer';

for (const c of storeCases()) {
  describe(`keepalive (${c.name} store)`, { skip: c.skip }, () => {
    test('accepted: the ACK echoes the sequence and says the source; GET shows udp and rendezvous; the answers say the UDP port', async () => {
      const reg = await c.start(30, '127.0.0.1', { stunPort: 0 });
      const ch = await call(reg.url, 'GET', '/v1/challenge');
      assert.deepEqual(ch.json.rendezvous, { port: reg.stunPort });
      const r = await register(reg.url, { name: 'Owner', port: 4000 });
      assert.deepEqual(r.json.rendezvous, { port: reg.stunPort });
      const before = await call(reg.url, 'GET', '/v1/peers/owner');
      assert.equal(before.json.udp, null, 'no keepalive yet');
      assert.equal(before.json.rendezvous, null);
      const peer = await UdpPeer.open();
      try {
        const ack = await keepalive(peer, reg, 'owner', r.json.token, 5);
        assert.deepEqual(ack, { sequence: 5, observed: peer.endpoint });
        const g = await call(reg.url, 'GET', '/v1/peers/OWNER');
        assert.deepEqual(g.json.udp, peer.endpoint);
        assert.deepEqual(g.json.rendezvous, { ip: '127.0.0.1', port: reg.stunPort });
        assert.equal(g.json.port, 4000, 'the registered fields stay');
        assert.equal((await rendezvousCounters(reg))('keepalive_accepted'), 1);
      } finally {
        await peer.close();
      }
    });

    test('refused without an answer: wrong mac, replayed or lower sequence, unknown name; the mapping does not move', async () => {
      const reg = await c.start(30, '127.0.0.1', { stunPort: 0 });
      const token = await registerPeer(reg, 'alice');
      const peer = await UdpPeer.open();
      const thief = await UdpPeer.open('127.0.0.2');
      try {
        assert.ok(await keepalive(peer, reg, 'alice', token, 10));
        const counters0 = await rendezvousCounters(reg);
        // The same datagram again, from another address: a replay cannot move the mapping.
        const replay = encodeKeepalive({ name: 'alice', sequence: 10 }, rendezvousKey(token));
        await thief.send(replay, reg.stunPort!);
        await thief.send(encodeKeepalive({ name: 'alice', sequence: 9 }, rendezvousKey(token)), reg.stunPort!);
        await thief.send(encodeKeepalive({ name: 'alice', sequence: 11 }, rendezvousKey('not-the-token')), reg.stunPort!);
        await thief.send(encodeKeepalive({ name: 'nobody', sequence: 11 }, rendezvousKey(token)), reg.stunPort!);
        assert.equal(await thief.next(0x21, 500), null, 'no ACK to any of them');
        const counters = await rendezvousCounters(reg);
        assert.equal(counters('keepalive_stale') - counters0('keepalive_stale'), 2);
        assert.equal(counters('keepalive_bad_mac') - counters0('keepalive_bad_mac'), 1);
        assert.equal(counters('keepalive_unknown') - counters0('keepalive_unknown'), 1);
        assert.equal(counters('keepalive_accepted'), 1);
        assert.deepEqual((await call(reg.url, 'GET', '/v1/peers/alice')).json.udp, peer.endpoint, 'still the first mapping');
        // A higher sequence with the right mac from a new address moves it (the NAT rebound).
        assert.deepEqual(await keepalive(thief, reg, 'alice', token, 12), { sequence: 12, observed: thief.endpoint });
        assert.deepEqual((await call(reg.url, 'GET', '/v1/peers/alice')).json.udp, thief.endpoint);
        assert.equal(thief.received.length, 0, 'nothing else came back');
      } finally {
        await peer.close();
        await thief.close();
      }
    });

    test('a new registration of the name forgets the mapping and starts a new sequence under the new token', async () => {
      const reg = await c.start(30, '127.0.0.1', { stunPort: 0 });
      const first = await register(reg.url, { name: 'bob', port: 4000 });
      const peer = await UdpPeer.open();
      try {
        assert.ok(await keepalive(peer, reg, 'bob', first.json.token, 1000));
        const again = await register(reg.url, { name: 'bob', port: 4001 }, first.key);
        assert.equal(again.status, 201);
        assert.equal((await call(reg.url, 'GET', '/v1/peers/bob')).json.udp, null, 'forgotten');
        assert.equal(await keepalive(peer, reg, 'bob', first.json.token, 2000, 500), null, 'the old token is dead');
        assert.ok(await keepalive(peer, reg, 'bob', again.json.token, 1), 'sequence 1 again under the new token');
        assert.deepEqual((await call(reg.url, 'GET', '/v1/peers/bob')).json.udp, peer.endpoint);
      } finally {
        await peer.close();
      }
    });

    test('the mapping lives a TTL after its last keepalive, and never beyond the registration', async () => {
      const reg = await c.start(2, '127.0.0.1', { stunPort: 0 });
      const token = await registerPeer(reg, 'carol');
      const peer = await UdpPeer.open();
      try {
        assert.ok(await keepalive(peer, reg, 'carol', token, 1));
        const t0 = Date.now();
        // HTTP heartbeats keep the registration; no more keepalives.
        await sleep(1200);
        assert.equal((await call(reg.url, 'POST', '/v1/peers/carol/heartbeat', undefined, bearer(token))).status, 200);
        const mid = await call(reg.url, 'GET', '/v1/peers/carol');
        if (Date.now() - t0 < 1900) assert.deepEqual(mid.json.udp, peer.endpoint, 'still within its TTL');
        await sleep(Math.max(0, t0 + 2300 - Date.now()));
        const late = await call(reg.url, 'GET', '/v1/peers/carol');
        assert.equal(late.status, 200, 'the registration lives on (heartbeat)');
        assert.equal(late.json.udp, null, 'the mapping expired');
        assert.equal(late.json.rendezvous, null);
        // Kept alive again, then the registration itself expires: both are gone.
        assert.ok(await keepalive(peer, reg, 'carol', token, 2));
        await sleep(3500);
        assert.equal((await call(reg.url, 'GET', '/v1/peers/carol')).status, 404);
        assert.equal(await keepalive(peer, reg, 'carol', token, 3, 500), null, 'an expired name is not kept alive');
      } finally {
        await peer.close();
      }
    });
  });
}
