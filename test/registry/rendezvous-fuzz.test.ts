// Fuzz at the real UDP port: mutated keepalives, introduction requests (with and without a valid
// token) and relay frames, and random bodies in rendezvous envelopes. The registry answers none of
// them with more bytes than it got, keeps serving, and its owner keeps its mapping.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { startRegistry } from '../../src/registry/index';
import { encodeClearFrame, writeCrc } from '../../src/wire/frame';
import { IntroStatus, encodeIntroRequest, encodeKeepalive, encodeRelay, rendezvousKey } from '../../src/wire/rendezvous';
import { seededRandom } from '../support/random';
import { mutateDatagram } from '../support/stun';
import { call, sleep } from './http';
import { UdpPeer, introduce, keepalive, keptAliveOwner, rendezvousCounters } from './udp-peer';

test('fuzz: 12 000 mutated and random rendezvous datagrams; never more bytes back than sent; still serving', async () => {
  const reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: 0, limits: { introductionsPerMinute: 1_000_000, keepalivesPerMinute: 1_000_000 } });
  const { peer: owner, token } = await keptAliveOwner(reg, 'fuzzed');
  const fuzzer = await UdpPeer.open('127.0.0.8');
  const rand = seededRandom(0xbad5eed);
  try {
    const first = await introduce(fuzzer, reg.stunPort!, 'fuzzed');
    assert.equal(first.status, IntroStatus.ok);
    const seeds = [
      encodeKeepalive({ name: 'fuzzed', sequence: 1000 }, rendezvousKey(token)),
      encodeIntroRequest({ requestId: 1, owner: 'fuzzed', hosts: [{ ip: '10.1.1.1', port: 9 }], token: first.token }),
      encodeIntroRequest({ requestId: 2, owner: 'fuzzed', hosts: [], token: Buffer.alloc(0) }),
      encodeRelay(first.relaySession, randomBytes(64)),
    ];
    const sentBefore = fuzzer.bytesSent;
    const receivedBefore = fuzzer.bytesReceived;
    for (let i = 0; i < 12_000; i++) {
      let d: Buffer;
      if (i % 3 === 0) d = encodeClearFrame(0x20 + Math.floor(rand() * 16), Math.floor(rand() * 2 ** 32), randomBytes(Math.floor(rand() * 220)));
      else {
        d = mutateDatagram(rand, seeds[i % seeds.length]!);
        if (d.length >= 12 && rand() < 0.7) d = writeCrc(Buffer.from(d)); // so the body parsers see it
      }
      await fuzzer.send(d, reg.stunPort!);
      // A barrier every 100: once the owner's keepalive is acknowledged the registry has read the
      // batch before it (loopback keeps order), so the socket's buffer is never simply overrun.
      if (i % 100 === 99) assert.ok(await keepalive(owner, reg, 'fuzzed', token, 2000 + i), `no ACK after datagram ${i}`);
    }
    await sleep(500);
    const sent = fuzzer.bytesSent - sentBefore;
    const back = fuzzer.bytesReceived - receivedBefore;
    assert.ok(back <= sent, `${back} bytes back for ${sent}`);
    const counters = await rendezvousCounters(reg);
    // Every datagram is counted once: as STUN (a mutation that is no rendezvous frame any more), rendezvous or relay.
    const text = (await call(reg.url, 'GET', '/metrics')).text;
    const seen = [...text.matchAll(/^p2pshare_registry_(?:stun_datagrams|rendezvous|relay)_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(seen > 12_000 * 0.9, `the registry saw ${seen} of the datagrams`);
    assert.equal(counters('dropped_answer_too_large'), 0);
    // Still serving: the owner's keepalive, an introduction, HTTP.
    assert.ok(await keepalive(owner, reg, 'fuzzed', token, 1_000_000));
    assert.ok(counters('keepalive_accepted') >= 120, 'the barriers');
    const other = await UdpPeer.open();
    assert.equal((await introduce(other, reg.stunPort!, 'fuzzed')).status, IntroStatus.ok);
    await other.close();
    assert.deepEqual((await call(reg.url, 'GET', '/v1/peers/fuzzed')).json.udp, owner.endpoint);
  } finally {
    await owner.close();
    await fuzzer.close();
    await reg.close();
  }
});
