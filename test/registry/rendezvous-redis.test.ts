// Two registry processes on one real redis-server: an owner kept alive at A, a requester
// introduced at B. B routes the introduction through Redis pub/sub; A sends the INTRO from its own
// socket and holds the relay session. Then the same with real `serve-registry` processes.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startRegistry, type RegistryOptions, type RunningRegistry } from '../../src/registry/index';
import { IntroStatus, RendezvousType, decodeIntro, decodeIntroResponse, encodeIntroRequest, encodeRelay, rendezvousKey, verifyRendezvousMac } from '../../src/wire/rendezvous';
import { startCli } from '../support/cli';
import { pingRedis, redisServerAvailable, startRedis, type TestRedis } from '../support/redis';
import { call, sleep } from './http';
import { UdpPeer, introduce, keepalive, keptAliveOwner, registerPeer, rendezvousCounters } from './udp-peer';

const haveRedis = redisServerAvailable();

describe('rendezvous across two registries on one Redis', { skip: haveRedis ? false : 'redis-server missing' }, () => {
  let redis: TestRedis;
  const running: RunningRegistry[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await Promise.all(running.map((r) => r.close()));
    await redis?.close();
  });

  /** Two registries (or more) on one prefix: one deployment. */
  async function pair(extra: Array<Partial<RegistryOptions>> = [{}, {}]): Promise<RunningRegistry[]> {
    const prefix = `rdv-${randomUUID()}:`;
    const regs = await Promise.all(extra.map((e) => startRegistry({ host: '127.0.0.1', port: 0, stunPort: 0, redisUrl: redis.url, redisPrefix: prefix, ...e })));
    running.push(...regs);
    return regs;
  }

  test('an introduction at B is delivered by A, which holds the relay session', async () => {
    const [a, b] = await pair();
    const { peer: owner, token } = await keptAliveOwner(a!, 'owner');
    const requester = await UdpPeer.open();
    try {
      const g = await call(b!.url, 'GET', '/v1/peers/owner');
      assert.deepEqual(g.json.udp, owner.endpoint);
      assert.deepEqual(g.json.rendezvous, { ip: '127.0.0.1', port: a!.stunPort }, "A's UDP address, looked up at B");
      const r = await introduce(requester, b!.stunPort!, 'owner');
      assert.equal(r.status, IntroStatus.ok);
      assert.deepEqual(r.owner, owner.endpoint);
      assert.notEqual(r.relaySession, 0);
      assert.deepEqual(r.relay, { ip: '127.0.0.1', port: a!.stunPort }, 'the relay is at A');
      const got = await owner.next(RendezvousType.intro);
      assert.ok(got);
      assert.deepEqual(got.from, { ip: '127.0.0.1', port: a!.stunPort }, 'sent from the socket the owner keeps alive to');
      const intro = decodeIntro(got.data)!;
      assert.ok(verifyRendezvousMac(rendezvousKey(token), intro));
      assert.deepEqual(intro.requester, requester.endpoint, 'the source B saw');
      assert.equal(intro.relaySession, r.relaySession);
      const [ca, cb] = [await rendezvousCounters(a!), await rendezvousCounters(b!)];
      assert.equal(cb('intro_routed'), 1);
      assert.equal(cb('intro_sent'), 0);
      assert.equal(ca('intro_sent'), 1);
      // The relay at A: the requester's port there is learnt from its first frame.
      const up = encodeRelay(r.relaySession, Buffer.from('hello through A'));
      await requester.send(up, a!.stunPort!);
      assert.deepEqual((await owner.next(RendezvousType.relay))?.data, up);
      const down = encodeRelay(r.relaySession, Buffer.from('and back'));
      await owner.send(down, a!.stunPort!);
      assert.deepEqual((await requester.next(RendezvousType.relay))?.data, down);
      // B holds no session.
      await requester.send(up, b!.stunPort!);
      await sleep(200);
      assert.equal((await rendezvousCounters(b!))('relay_dropped_unknown'), 1);
      // The same token at A: the same session, no second INTRO (once per token, wherever asked).
      await requester.send(encodeIntroRequest({ requestId: 50, owner: 'owner', hosts: [], token: r.token }), a!.stunPort!);
      const res = await requester.next(RendezvousType.introResponse);
      assert.ok(res);
      assert.equal(decodeIntroResponse(res.data)!.relaySession, r.relaySession, 'the same relay session');
      await sleep(200);
      assert.equal(owner.countOf(RendezvousType.intro), 0);
    } finally {
      await owner.close();
      await requester.close();
    }
  });

  test('the holder follows the last keepalive; a holder gone means no keepalive', async () => {
    const [a, b] = await pair();
    const token = await registerPeer(a!, 'mover');
    const owner = await UdpPeer.open();
    const requester = await UdpPeer.open();
    try {
      assert.ok(await keepalive(owner, a!, 'mover', token, 1));
      assert.ok(await keepalive(owner, b!, 'mover', token, 2), 'now kept alive at B');
      assert.deepEqual((await call(a!.url, 'GET', '/v1/peers/mover')).json.rendezvous, { ip: '127.0.0.1', port: b!.stunPort });
      assert.equal((await introduce(requester, b!.stunPort!, 'mover')).status, IntroStatus.ok);
      assert.ok(await owner.next(RendezvousType.intro, 2000, (m) => m.from.port === b!.stunPort), 'from B, locally');
      assert.equal((await rendezvousCounters(b!))('intro_routed'), 0);
      await b!.close();
      assert.equal(await keepalive(owner, b!, 'mover', token, 3, 300), null, 'B is gone');
      const late = await introduce(requester, a!.stunPort!, 'mover', [], 10);
      assert.equal(late.status, IntroStatus.noKeepalive, 'nobody holds it any more');
    } finally {
      await owner.close();
      await requester.close();
    }
  });

  test('Redis frozen: keepalives go unanswered and are counted as store errors; answered again once it is back', async () => {
    const [a] = await pair([{}]);
    const token = await registerPeer(a!, 'patient');
    const owner = await UdpPeer.open();
    try {
      assert.ok(await keepalive(owner, a!, 'patient', token, 1));
      redis.freeze();
      try {
        assert.equal(await pingRedis(redis.port, 300), false, 'Redis really answers nothing');
        assert.equal(await keepalive(owner, a!, 'patient', token, 2, 2500), null);
      } finally {
        redis.thaw();
      }
      assert.ok(await keepalive(owner, a!, 'patient', token, 3), 'served again');
      assert.ok((await rendezvousCounters(a!))('store_error') >= 1);
      assert.deepEqual((await call(a!.url, 'GET', '/v1/peers/patient')).json.udp, owner.endpoint);
    } finally {
      await owner.close();
    }
  });

  test('a holder without an advertised address: introduced through B without a relay; GET at B points at B', async () => {
    const [a, b] = await pair([{ host: '0.0.0.0' }, {}]);
    assert.equal(a!.advertisedUdp, null, 'a wildcard host advertises nothing');
    const { peer: owner } = await keptAliveOwner(a!, 'hidden');
    const requester = await UdpPeer.open();
    try {
      const g = await call(b!.url, 'GET', '/v1/peers/hidden');
      assert.deepEqual(g.json.rendezvous, { ip: '127.0.0.1', port: b!.stunPort }, 'B routes it');
      const ga = await call(a!.url, 'GET', '/v1/peers/hidden');
      assert.deepEqual(ga.json.rendezvous, { ip: '127.0.0.1', port: a!.stunPort }, 'A: the address the request reached');
      const r = await introduce(requester, b!.stunPort!, 'hidden');
      assert.equal(r.status, IntroStatus.ok);
      assert.equal(r.relaySession, 0, 'nowhere to tell the requester to relay');
      assert.ok(await owner.next(RendezvousType.intro));
    } finally {
      await owner.close();
      await requester.close();
    }
  });

  test('two serve-registry processes: --advertise-udp in the answers, an introduction at B delivered by A', async () => {
    const READY = /registry listening on (http:\/\/[^\s]+) \(store: redis, stun: udp port (\d+)\)/;
    const prefixArgs = ['--host', '127.0.0.1', '--port', '0', '--stun-port', '0', '--redis', redis.url];
    const a = startCli(['serve-registry', ...prefixArgs]);
    const b = startCli(['serve-registry', ...prefixArgs, '--advertise-udp', '127.0.0.1:9']);
    try {
      const [ma, mb] = [await a.waitForLine(READY), await b.waitForLine(READY)];
      const regA = { url: ma[1]!, stunPort: Number(ma[2]) } as RunningRegistry;
      const urlB = mb[1]!;
      assert.deepEqual((await call(urlB, 'GET', '/v1/challenge')).json.rendezvous, { port: 9 }, 'the advertised port');
      const name = `cli-${randomUUID().slice(0, 8)}`;
      const { peer: owner } = await keptAliveOwner(regA, name);
      const requester = await UdpPeer.open();
      try {
        const r = await introduce(requester, Number(mb[2]), name);
        assert.equal(r.status, IntroStatus.ok);
        assert.deepEqual(r.relay, { ip: '127.0.0.1', port: regA.stunPort });
        const got = await owner.next(RendezvousType.intro);
        assert.deepEqual(got?.from, { ip: '127.0.0.1', port: regA.stunPort });
      } finally {
        await owner.close();
        await requester.close();
      }
      assert.equal(await a.stop('SIGTERM'), 0);
      assert.equal(await b.stop('SIGTERM'), 0);
    } finally {
      await a.stop('SIGKILL');
      await b.stop('SIGKILL');
    }
  });
});
