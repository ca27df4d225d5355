// Introductions at the registry's UDP port, on every store (stores.ts): the challenge round trip, the INTRO to
// the owner's kept-alive mapping (only with a valid token, once per token), the refusals, the
// per-address limit, and a flood that gets back fewer bytes than it sends.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  INTRO_REQUEST_BYTES, IntroStatus, RendezvousType, decodeIntro, decodeIntroChallenge, decodeIntroResponse, encodeIntroRequest, encodeKeepalive,
  encodeRelay, rendezvousKey, verifyRendezvousMac,
} from '../../src/wire/rendezvous';
import { encodeClearFrame } from '../../src/wire/frame';
import { call, sleep } from './http';
import { seededRandom } from '../support/random';
import { storeCases } from './stores';
import { UdpPeer, introduce, keepalive, keptAliveOwner, registerPeer, rendezvousCounters } from './udp-peer';

for (const c of storeCases()) {
  describe(`introduction (${c.name} store)`, { skip: c.skip }, () => {
    test('challenge, request with the token, INTRO_RESPONSE with the owner candidates; the owner gets a macced INTRO from the registry port', async () => {
      const reg = await c.start(30, '127.0.0.1', { stunPort: 0 });
      const { peer: owner, token } = await keptAliveOwner(reg, 'owner', { addresses: ['192.168.1.20', '10.0.0.20'] });
      const requester = await UdpPeer.open();
      try {
        // The first try carries no token: only a challenge comes back, smaller than the request.
        await requester.send(encodeIntroRequest({ requestId: 7, owner: 'owner', hosts: [], token: Buffer.alloc(0) }), reg.stunPort!);
        const ch = await requester.next(RendezvousType.introChallenge);
        assert.ok(ch);
        assert.ok(ch.data.length < INTRO_REQUEST_BYTES, `${ch.data.length} bytes`);
        assert.equal(decodeIntroChallenge(ch.data)!.requestId, 7);
        assert.equal(await owner.next(RendezvousType.intro, 300), null, 'no INTRO without a token');
        const hosts = [{ ip: '192.168.7.7', port: 5000 }, { ip: '8.8.8.8', port: 53 }, { ip: '127.0.0.1', port: 5001 }];
        const r = await introduce(requester, reg.stunPort!, 'OWNER', hosts);
        assert.equal(r.status, IntroStatus.ok);
        assert.deepEqual(r.owner, owner.endpoint, "the owner's kept-alive mapping");
        assert.deepEqual(r.hosts, [{ ip: '192.168.1.20', port: 4000 }, { ip: '10.0.0.20', port: 4000 }]);
        assert.notEqual(r.relaySession, 0, 'a relay session is offered');
        assert.deepEqual(r.relay, { ip: '127.0.0.1', port: reg.stunPort }, 'the advertised address (the bound host)');
        const got = await owner.next(RendezvousType.intro);
        assert.ok(got, 'the owner got an INTRO');
        assert.deepEqual(got.from, { ip: '127.0.0.1', port: reg.stunPort }, 'from the socket it keeps alive to');
        const intro = decodeIntro(got.data)!;
        assert.ok(verifyRendezvousMac(rendezvousKey(token), intro), "macced with the owner's token hash");
        assert.equal(intro.sequence, 1, "its last keepalive's sequence");
        assert.deepEqual(intro.requester, requester.endpoint);
        assert.deepEqual(intro.hosts, [{ ip: '192.168.7.7', port: 5000 }, { ip: '127.0.0.1', port: 5001 }], 'a third party public address is left out');
        assert.equal(intro.relaySession, r.relaySession);
      } finally {
        await owner.close();
        await requester.close();
      }
    });

    test('once per token: a repeated request gets the same answer and no second INTRO; a stolen or forged token only a challenge', async () => {
      const reg = await c.start(30, '127.0.0.1', { stunPort: 0 });
      const { peer: owner } = await keptAliveOwner(reg, 'owner2');
      const requester = await UdpPeer.open();
      const other = await UdpPeer.open('127.0.0.3');
      try {
        const first = await introduce(requester, reg.stunPort!, 'owner2');
        assert.ok(await owner.next(RendezvousType.intro));
        await requester.send(encodeIntroRequest({ requestId: 99, owner: 'owner2', hosts: [], token: first.token }), reg.stunPort!);
        const again = decodeIntroResponse((await requester.next(RendezvousType.introResponse))!.data)!;
        const { token: _used, ...firstAnswer } = first;
        assert.deepEqual({ ...again, requestId: 0 }, { ...firstAnswer, requestId: 0 }, 'the same answer');
        assert.equal(again.requestId, 99);
        // The token was issued to requester's address: from another address it is worth nothing.
        await other.send(encodeIntroRequest({ requestId: 5, owner: 'owner2', hosts: [], token: first.token }), reg.stunPort!);
        await other.send(encodeIntroRequest({ requestId: 6, owner: 'owner2', hosts: [], token: randomBytes(20) }), reg.stunPort!);
        assert.ok(await other.next(RendezvousType.introChallenge));
        assert.ok(await other.next(RendezvousType.introChallenge));
        await sleep(300);
        assert.equal(owner.countOf(RendezvousType.intro), 0, 'no second INTRO');
        assert.equal(other.countOf(RendezvousType.introResponse), 0);
        const counters = await rendezvousCounters(reg);
        assert.equal(counters('intro_sent'), 1);
        assert.equal(counters('intro_repeated'), 1);
        assert.equal(counters('intro_challenged'), 3);
      } finally {
        await owner.close();
        await requester.close();
        await other.close();
      }
    });

    test('refusals: unknown owner, owner without keepalive, over the per-address limit (busy); none sends an INTRO', async () => {
      const reg = await c.start(30, '127.0.0.1', { stunPort: 0, limits: { introductionsPerMinute: 3 } });
      await registerPeer(reg, 'silent');
      const { peer: owner } = await keptAliveOwner(reg, 'kept');
      const requester = await UdpPeer.open('127.0.0.4');
      try {
        const unknown = await introduce(requester, reg.stunPort!, 'nobody');
        assert.deepEqual({ ...unknown, token: null, requestId: 0 }, { requestId: 0, status: IntroStatus.unknownOwner, owner: null, hosts: [], relaySession: 0, relay: null, token: null });
        assert.equal((await introduce(requester, reg.stunPort!, 'silent', [], 10)).status, IntroStatus.noKeepalive);
        assert.equal((await introduce(requester, reg.stunPort!, 'kept', [], 20)).status, IntroStatus.ok);
        assert.ok(await owner.next(RendezvousType.intro));
        assert.equal((await introduce(requester, reg.stunPort!, 'kept2', [], 30)).status, IntroStatus.busy, 'the fourth in a minute');
        // Another address has its own budget.
        const elsewhere = await UdpPeer.open('127.0.0.5');
        assert.equal((await introduce(elsewhere, reg.stunPort!, 'nobody')).status, IntroStatus.unknownOwner);
        await elsewhere.close();
        const counters = await rendezvousCounters(reg);
        assert.equal(counters('intro_busy'), 1);
        assert.equal(counters('intro_unknown_owner'), 2);
        assert.equal(counters('intro_no_keepalive'), 1);
        assert.equal(counters('intro_sent'), 1);
      } finally {
        await owner.close();
        await requester.close();
      }
    });

    test('a flood without tokens: fewer bytes come back than go out, only challenges, and no INTRO reaches the owner', async () => {
      const reg = await c.start(30, '127.0.0.1', { stunPort: 0 });
      const { peer: owner, token } = await keptAliveOwner(reg, 'victim');
      const flood = await UdpPeer.open('127.0.0.6');
      const rand = seededRandom(0xf100d);
      try {
        const kinds = [
          () => encodeIntroRequest({ requestId: 1, owner: 'victim', hosts: [{ ip: '10.0.0.1', port: 1 }], token: Buffer.alloc(0) }),
          () => encodeIntroRequest({ requestId: 2, owner: 'victim', hosts: [], token: randomBytes(20) }),
          () => encodeIntroRequest({ requestId: 3, owner: 'victim', hosts: [], token: Buffer.alloc(0) }).subarray(0, 40), // unpadded: CRC broken
          () => encodeClearFrame(RendezvousType.introRequest, 4, [Buffer.from([6]), Buffer.from('victim'), Buffer.from([0, 0, 0])]), // unpadded
          () => encodeKeepalive({ name: 'victim', sequence: 5 }, rendezvousKey('wrong')),
          () => encodeKeepalive({ name: 'victim', sequence: 1 }, rendezvousKey(token)), // a replay
          () => encodeKeepalive({ name: `n${Math.floor(rand() * 1e6)}`, sequence: 5 }, rendezvousKey('x')),
          () => encodeRelay(1 + Math.floor(rand() * 1e9), randomBytes(200)),
          () => encodeClearFrame(0x20 + Math.floor(rand() * 16), 0, randomBytes(Math.floor(rand() * 200))),
        ];
        for (let i = 0; i < 1800; i++) {
          await flood.send(kinds[i % kinds.length]!(), reg.stunPort!);
          if (i % 100 === 99) await sleep(5);
        }
        await sleep(500);
        assert.ok(flood.bytesReceived <= flood.bytesSent, `${flood.bytesReceived} bytes back for ${flood.bytesSent}`);
        assert.ok(flood.received.length > 0, 'the challenges did come back (the flood was processed)');
        assert.ok(flood.received.every((r) => r.data[3] === RendezvousType.introChallenge), 'only challenges');
        assert.ok(flood.received.every((r) => r.data.length < INTRO_REQUEST_BYTES));
        assert.equal(owner.countOf(RendezvousType.intro), 0);
        const counters = await rendezvousCounters(reg);
        assert.ok(counters('intro_unpadded') > 0 && counters('keepalive_bad_mac') > 0 && counters('keepalive_stale') > 0, 'every kind reached the registry');
        assert.equal(counters('dropped_answer_too_large'), 0);
        // And the owner is still served.
        assert.ok(await keepalive(owner, reg, 'victim', token, 2));
        assert.equal((await call(reg.url, 'GET', '/healthz')).status, 200);
      } finally {
        await owner.close();
        await flood.close();
      }
    });
  });
}
