// The relay over real UDP: a session opened at the introduction forwards RELAY frames unchanged
// between the requester and the owner's kept-alive mapping, nothing from a third address, within
// its caps; --no-relay offers none.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { RunningRegistry } from '../../src/registry/index';
import { IntroStatus, RendezvousType, encodeRelay } from '../../src/wire/rendezvous';
import { call, sleep } from './http';
import { metric } from './sockets';
import { storeCases } from './stores';
import { UdpPeer, introduce, keptAliveOwner, rendezvousCounters } from './udp-peer';

/** An owner kept alive, a requester introduced to it: the relay session between them. */
async function relayed(reg: RunningRegistry, name: string) {
  const { peer: owner } = await keptAliveOwner(reg, name);
  const requester = await UdpPeer.open();
  const r = await introduce(requester, reg.stunPort!, name);
  assert.equal(r.status, IntroStatus.ok);
  assert.ok(await owner.next(RendezvousType.intro));
  return { owner, requester, session: r.relaySession, close: () => Promise.all([owner.close(), requester.close()]) };
}

const stores = storeCases();
for (const c of stores) {
  describe(`relay (${c.name} store)`, { skip: c.skip }, () => {
    test('forwards both ways, byte for byte, the same size; a third address gets nothing through', async () => {
      const reg = await c.start(30, '127.0.0.1', { stunPort: 0 });
      const { owner, requester, session, close } = await relayed(reg, 'relayed');
      const third = await UdpPeer.open('127.0.0.7');
      try {
        assert.notEqual(session, 0);
        const up = encodeRelay(session, randomBytes(1464));
        await requester.send(up, reg.stunPort!);
        const atOwner = await owner.next(RendezvousType.relay);
        assert.ok(atOwner);
        assert.deepEqual(atOwner.data, up, 'unchanged');
        assert.deepEqual(atOwner.from, { ip: '127.0.0.1', port: reg.stunPort });
        const down = encodeRelay(session, randomBytes(300));
        await owner.send(down, reg.stunPort!);
        assert.deepEqual((await requester.next(RendezvousType.relay))?.data, down);
        // A stranger who knows the session id: dropped, in both directions.
        await third.send(encodeRelay(session, randomBytes(100)), reg.stunPort!);
        await sleep(300);
        assert.equal(owner.countOf(RendezvousType.relay) + requester.countOf(RendezvousType.relay) + third.received.length, 0);
        const counters = await rendezvousCounters(reg);
        assert.equal(counters('relay_forwarded'), 2);
        assert.equal(counters('relay_dropped_stranger'), 1);
        const m = (await call(reg.url, 'GET', '/metrics')).text;
        assert.equal(metric(m, 'p2pshare_registry_relay_bytes_total'), 1464 + 300);
        assert.equal(metric(m, 'p2pshare_registry_relay_sessions'), 1);
      } finally {
        await close();
        await third.close();
      }
    });
  });
}

describe('relay caps over UDP (memory store)', () => {
  const [memory] = stores;

  test('per-session rate: a burst past it is cut; bytes per session: the session ends', async () => {
    const reg = await memory!.start(30, '127.0.0.1', { stunPort: 0, relay: { sessionBytesPerSecond: 4000, sessionBytes: 20_000 } });
    const { owner, requester, session, close } = await relayed(reg, 'capped');
    try {
      const t0 = performance.now();
      for (let i = 0; i < 10; i++) await requester.send(encodeRelay(session, randomBytes(1000)), reg.stunPort!);
      await sleep(300);
      const elapsed = (performance.now() - t0) / 1000;
      const through = owner.countOf(RendezvousType.relay);
      // A burst of 1472 bytes (one datagram), then 4000 a second.
      assert.ok(through >= 1 && through * 1000 <= 1472 + 4000 * elapsed, `${through} of 10 through in ${elapsed.toFixed(2)} s`);
      assert.ok(through < 10);
      assert.ok((await rendezvousCounters(reg))('relay_dropped_rate') >= 10 - through);
      // Past 20 000 bytes in all the session ends (the budget refills meanwhile).
      owner.received.length = 0;
      let sent = through * 1000;
      for (let i = 0; i < 60 && sent <= 20_000; i++) {
        await sleep(300);
        await requester.send(encodeRelay(session, randomBytes(1000)), reg.stunPort!);
        if (await owner.next(RendezvousType.relay, 1000)) sent += 1000;
        else if ((await rendezvousCounters(reg))('relay_closed_bytes') === 1) break;
      }
      assert.ok(sent <= 20_000, `${sent} bytes went through a session capped at 20 000`);
      const counters = await rendezvousCounters(reg);
      assert.equal(counters('relay_closed_bytes'), 1);
      await requester.send(encodeRelay(session, randomBytes(10)), reg.stunPort!);
      await sleep(200);
      assert.ok((await rendezvousCounters(reg))('relay_dropped_unknown') >= 1, 'the session is gone');
    } finally {
      await close();
    }
  });

  test('sessions held: past the cap an introduction offers no relay; idle sessions are forgotten', async () => {
    const reg = await memory!.start(30, '127.0.0.1', { stunPort: 0, relay: { maxSessions: 1, idleMs: 400 } });
    const a = await relayed(reg, 'first');
    const b = await relayed(reg, 'second');
    try {
      assert.notEqual(a.session, 0);
      assert.equal(b.session, 0, 'no room for a second session');
      assert.equal((await rendezvousCounters(reg))('relay_refused_full'), 1);
      await sleep(1200);
      assert.equal((await rendezvousCounters(reg))('relay_closed_idle'), 1);
      await a.requester.send(encodeRelay(a.session, randomBytes(10)), reg.stunPort!);
      assert.equal(await a.owner.next(RendezvousType.relay, 300), null, 'forgotten');
      const c = await relayed(reg, 'third');
      assert.notEqual(c.session, 0, 'room again');
      await c.close();
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('total rate: shared by every session', async () => {
    const reg = await memory!.start(30, '127.0.0.1', { stunPort: 0, relay: { totalBytesPerSecond: 4000 } });
    const a = await relayed(reg, 'tr1');
    const b = await relayed(reg, 'tr2');
    try {
      for (let i = 0; i < 5; i++) {
        await a.requester.send(encodeRelay(a.session, randomBytes(1000)), reg.stunPort!);
        await b.requester.send(encodeRelay(b.session, randomBytes(1000)), reg.stunPort!);
      }
      await sleep(300);
      const through = a.owner.countOf(RendezvousType.relay) + b.owner.countOf(RendezvousType.relay);
      assert.ok(through < 10, `${through} of 10 through`);
      assert.ok((await rendezvousCounters(reg))('relay_dropped_total_rate') >= 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('relay off: no session offered, RELAY frames dropped, /metrics says so', async () => {
    const reg = await memory!.start(30, '127.0.0.1', { stunPort: 0, relay: false });
    const { owner, requester } = await keptAliveOwner(reg, 'norelay').then(async (o) => ({ owner: o.peer, requester: await UdpPeer.open() }));
    try {
      const r = await introduce(requester, reg.stunPort!, 'norelay');
      assert.equal(r.status, IntroStatus.ok, 'introductions still work');
      assert.equal(r.relaySession, 0);
      assert.equal(r.relay, null);
      assert.ok(await owner.next(RendezvousType.intro));
      await requester.send(encodeRelay(12345, randomBytes(50)), reg.stunPort!);
      await sleep(200);
      const m = (await call(reg.url, 'GET', '/metrics')).text;
      assert.equal(metric(m, 'p2pshare_registry_relay_enabled'), 0);
      assert.equal(metric(m, 'p2pshare_registry_rendezvous_total{event="dropped_unexpected"}'), 1);
      assert.doesNotMatch(m, /p2pshare_registry_relay_sessions/);
      assert.equal(reg.relay, null);
    } finally {
      await owner.close();
      await requester.close();
    }
  });
});
