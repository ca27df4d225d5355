// Fuzz: random datagrams, random bodies in valid envelopes, and mutations of valid frames, through
// every rendezvous decoder. None may throw; whatever decodes must be well-formed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isIP } from 'node:net';
import {
  IntroStatus, MAX_HOST_CANDIDATES, RendezvousType, decodeIntro, decodeIntroChallenge, decodeIntroRequest, decodeIntroResponse,
  decodeKeepalive, decodeKeepaliveAck, decodePunch, decodeRelay, encodeIntro, encodeIntroChallenge, encodeIntroRequest, encodeIntroResponse,
  encodeKeepalive, encodeKeepaliveAck, encodePunch, encodeRelay, rendezvousKey, rendezvousTypeOf, type Candidate,
} from '../../src/wire/rendezvous';
import { encodeClearFrame, writeCrc } from '../../src/wire/frame';
import { seededRandom } from '../support/random';
import { mutateDatagram } from '../support/stun';

const DECODERS = [decodeKeepalive, decodeKeepaliveAck, decodeIntroRequest, decodeIntroChallenge, decodeIntroResponse, decodeIntro, decodePunch, decodeRelay];

function seeds(): Buffer[] {
  const key = rendezvousKey('t');
  const c4: Candidate = { ip: '198.51.100.4', port: 1000 };
  const c6: Candidate = { ip: '2001:db8::4', port: 2000 };
  return [
    encodeKeepalive({ name: 'peer-1', sequence: 5 }, key),
    encodeKeepaliveAck({ sequence: 5, observed: c6 }),
    encodeIntroRequest({ requestId: 9, owner: 'owner', hosts: [c4, c6], token: randomBytes(20) }),
    encodeIntroChallenge({ requestId: 9, token: randomBytes(20) }),
    encodeIntroResponse({ requestId: 9, status: IntroStatus.ok, owner: c4, hosts: [c6], relaySession: 3, relay: null }),
    encodeIntro({ sequence: 5, requester: c4, hosts: [c4, c6], relaySession: 0, nonce: randomBytes(8) }, key),
    encodePunch(randomBytes(8)),
    encodeRelay(4, randomBytes(100)),
  ];
}

function checkCandidate(c: unknown): void {
  const x = c as Candidate;
  assert.ok(isIP(x.ip) !== 0, `candidate ip ${x.ip}`);
  assert.ok(Number.isInteger(x.port) && x.port >= 1 && x.port <= 65535);
}

/** Every decoder on `d`: none throws, and what one returns is well-formed. */
function decodeAll(d: Buffer): number {
  let decoded = 0;
  for (const decode of DECODERS) {
    const out = decode(d) as Record<string, unknown> | null;
    if (out === null) continue;
    decoded++;
    for (const [k, v] of Object.entries(out)) {
      if (k === 'hosts') {
        assert.ok(Array.isArray(v) && v.length <= MAX_HOST_CANDIDATES);
        (v as unknown[]).forEach(checkCandidate);
      } else if (k === 'observed' || k === 'requester') checkCandidate(v);
      else if ((k === 'owner' && typeof v !== 'string') || k === 'relay') {
        if (v !== null) checkCandidate(v);
      } else if (k === 'sequence') assert.ok(Number.isSafeInteger(v) && (v as number) >= 0);
    }
  }
  rendezvousTypeOf(d);
  return decoded;
}

test('fuzz: 60 000 random datagrams, random bodies and mutated frames; the decoders never throw', () => {
  const rand = seededRandom(0x5eed13);
  const valid = seeds();
  for (const d of valid) assert.equal(decodeAll(d), 1, `seed type 0x${d[3]!.toString(16)} decodes by exactly one decoder`);
  let decoded = 0;
  for (let i = 0; i < 60_000; i++) {
    let d: Buffer;
    switch (i % 4) {
      case 0: // anything at all, sometimes with our magic
        d = randomBytes(Math.floor(rand() * 300));
        if (d.length >= 4 && rand() < 0.5) {
          d.write('PS\u0002', 0, 'latin1');
          d[3] = 0x20 + Math.floor(rand() * 16);
        }
        break;
      case 1: // a random body in a valid envelope of a rendezvous type
        d = encodeClearFrame(0x20 + Math.floor(rand() * 8), rand() < 0.5 ? 0 : Math.floor(rand() * 2 ** 32), randomBytes(Math.floor(rand() * 200)));
        break;
      case 2: // a valid frame mutated, CRC fixed so the body parsers see it
        d = mutateDatagram(rand, valid[i % valid.length]!);
        if (d.length >= 12) d = writeCrc(Buffer.from(d));
        break;
      default: // a valid frame mutated, CRC left as it is
        d = mutateDatagram(rand, valid[i % valid.length]!);
    }
    decoded += decodeAll(d) > 0 ? 1 : 0;
  }
  // Proof the mutations reached the body parsers rather than all failing at the envelope.
  assert.ok(decoded > 1000, `only ${decoded} fuzzed datagrams decoded`);
});

test('fuzz: relay frames of every length decode to exactly their inner bytes', () => {
  for (let n = 0; n <= 1480; n++) {
    const d = Buffer.concat([Buffer.from([0x50, 0x53, 2, RendezvousType.relay, 0, 0, 0, 1]), randomBytes(n)]);
    const r = decodeRelay(d);
    if (n === 0 || d.length > 1472) assert.equal(r, null, `length ${n}`);
    else assert.equal(r!.inner.length, n);
  }
});
