// Noise_IK_25519_ChaChaPoly_SHA256 against the published cacophony and snow vectors (committed
// unchanged in test/fixtures/noise, sources named in its "about"), then hostile input.
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PrivateKey } from '../../src/core/x25519';
import { CipherState, HandshakeState, PROTOCOL_NAME } from '../../src/crypto/noise';
import { seededRandom } from '../support/random';

interface Vector {
  protocol_name: string;
  source: string;
  init_prologue: string;
  init_static: string;
  init_ephemeral: string;
  init_remote_static: string;
  resp_prologue: string;
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash?: string;
  messages: { payload: string; ciphertext: string }[];
}

const fixture = JSON.parse(
  readFileSync(join(import.meta.dirname, '../fixtures/noise/noise-ik-25519-chachapoly-sha256.json'), 'utf8'),
) as { about: string; vectors: Vector[] };
const hex = (s: string) => Buffer.from(s, 'hex');
const key = (s: string) => PrivateKey.fromRaw(hex(s));

test('the fixture holds both vectors, for this protocol only', () => {
  assert.deepEqual(fixture.vectors.map((v) => v.source).sort(), ['cacophony', 'snow']);
  for (const v of fixture.vectors) assert.equal(v.protocol_name, PROTOCOL_NAME);
});

for (const v of fixture.vectors) {
  test(`${v.source} vector: every message byte for byte, both sides`, () => {
    const initiator = HandshakeState.initiator({
      prologue: hex(v.init_prologue),
      staticKey: key(v.init_static),
      remoteStatic: hex(v.init_remote_static),
      ephemeral: key(v.init_ephemeral),
    });
    const responder = HandshakeState.responder({
      prologue: hex(v.resp_prologue),
      staticKey: key(v.resp_static),
      ephemeral: key(v.resp_ephemeral),
    });
    const [m1, m2, ...transport] = v.messages;

    const c1 = initiator.writeMessage(hex(m1!.payload));
    assert.equal(c1.toString('hex'), m1!.ciphertext);
    assert.equal(responder.readMessage(c1)?.toString('hex'), m1!.payload);
    assert.deepEqual(responder.remoteStatic, key(v.init_static).publicKey);

    const c2 = responder.writeMessage(hex(m2!.payload));
    assert.equal(c2.toString('hex'), m2!.ciphertext);
    assert.equal(initiator.readMessage(c2)?.toString('hex'), m2!.payload);

    const i = initiator.split();
    const r = responder.split();
    assert.deepEqual(i.handshakeHash, r.handshakeHash);
    if (v.handshake_hash) assert.equal(i.handshakeHash.toString('hex'), v.handshake_hash);
    assert.deepEqual(i.send, r.receive);
    assert.deepEqual(i.receive, r.send);
    assert.deepEqual(i.tcpBase, r.tcpBase);
    assert.notDeepEqual(i.tcpBase, i.send);
    assert.notDeepEqual(i.tcpBase, i.receive);
    assert.deepEqual(i.remoteStatic, hex(v.init_remote_static));
    assert.deepEqual(r.remoteStatic, key(v.init_static).publicKey);

    // Transport messages alternate, initiator first, each direction with nonces 0, 1, 2, ...
    const ends = [
      { send: new CipherState(i.send), receive: new CipherState(r.receive) },
      { send: new CipherState(r.send), receive: new CipherState(i.receive) },
    ];
    assert.ok(transport.length >= 2);
    transport.forEach((m, n) => {
      const { send, receive } = ends[n % 2]!;
      const c = send.encryptWithAd(Buffer.alloc(0), hex(m.payload));
      assert.equal(c.toString('hex'), m.ciphertext, `transport message ${n + 2}`);
      assert.equal(receive.decryptWithAd(Buffer.alloc(0), c)?.toString('hex'), m.payload);
    });
  });
}

test('CipherState.rekey() is ENCRYPT(k, 2^64 - 1, empty, zeros) cut to 32 bytes', () => {
  const k = randomBytes(32);
  const c = createCipheriv('chacha20-poly1305', k, hex('00000000ffffffffffffffff'), { authTagLength: 16 });
  c.setAAD(Buffer.alloc(0), { plaintextLength: 32 });
  const expected = Buffer.concat([c.update(Buffer.alloc(32)), c.final()]);
  const rekeyed = new CipherState(k);
  rekeyed.rekey();
  const direct = new CipherState(expected);
  const pt = randomBytes(20);
  assert.deepEqual(rekeyed.encryptWithAd(Buffer.alloc(0), pt), direct.encryptWithAd(Buffer.alloc(0), pt));
});

const owner = PrivateKey.generate();
const requester = PrivateKey.generate();
const prologue = Buffer.from('p2pshare/2 olive');

function pair(opts: { responderPrologue?: Buffer; remoteStatic?: Buffer; ephemeral?: PrivateKey } = {}) {
  const initiator = HandshakeState.initiator({
    prologue,
    staticKey: requester,
    remoteStatic: opts.remoteStatic ?? owner.publicKey,
    ephemeral: opts.ephemeral,
  });
  const responder = HandshakeState.responder({ prologue: opts.responderPrologue ?? prologue, staticKey: owner });
  return { initiator, responder };
}

test('a handshake with a 12-byte payload: msg1 is 108 bytes, msg2 48, keys cross', () => {
  const { initiator, responder } = pair();
  const ts = randomBytes(12);
  const m1 = initiator.writeMessage(ts);
  assert.equal(m1.length, 108);
  assert.deepEqual(responder.readMessage(m1), ts);
  assert.deepEqual(responder.remoteStatic, requester.publicKey);
  const m2 = responder.writeMessage();
  assert.equal(m2.length, 48);
  assert.deepEqual(initiator.readMessage(m2), Buffer.alloc(0));
  assert.ok(initiator.complete && responder.complete);
  const i = initiator.split();
  const r = responder.split();
  assert.deepEqual([i.send, i.receive, i.tcpBase], [r.receive, r.send, r.tcpBase]);
  assert.notDeepEqual(i.send, i.receive);
});

test('another prologue (owner reached under another name) or another responder static fails msg1', () => {
  const wrongName = pair({ responderPrologue: Buffer.from('p2pshare/2 oliver') });
  assert.equal(wrongName.responder.readMessage(wrongName.initiator.writeMessage(randomBytes(12))), null);
  const wrongKey = pair({ remoteStatic: PrivateKey.generate().publicKey });
  assert.equal(wrongKey.responder.readMessage(wrongKey.initiator.writeMessage(randomBytes(12))), null);
});

test('a flipped bit anywhere in msg1 or msg2 fails it', () => {
  const ephemeral = PrivateKey.generate();
  const m1 = pair({ ephemeral }).initiator.writeMessage(randomBytes(12));
  for (let bit = 0; bit < m1.length * 8; bit++) {
    const bad = Buffer.from(m1);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    assert.equal(pair().responder.readMessage(bad), null, `msg1 bit ${bit}`);
  }
  const good = pair({ ephemeral });
  assert.ok(good.responder.readMessage(good.initiator.writeMessage(randomBytes(12))));
  const m2 = good.responder.writeMessage();
  for (let bit = 0; bit < m2.length * 8; bit++) {
    const bad = Buffer.from(m2);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    const { initiator } = pair({ ephemeral });
    initiator.writeMessage(randomBytes(12));
    assert.equal(initiator.readMessage(bad), null, `msg2 bit ${bit}`);
  }
});

test('small-order ephemeral keys are refused, not thrown', () => {
  const m1 = pair().initiator.writeMessage(randomBytes(12));
  // u = 0 and u = 1 are points of small order (RFC 7748 section 6.1 warns of the all-zero output).
  for (const u of [Buffer.alloc(32), Buffer.concat([Buffer.of(1), Buffer.alloc(31)])]) {
    assert.equal(pair().responder.readMessage(Buffer.concat([u, m1.subarray(32)])), null);
    const { initiator } = pair();
    initiator.writeMessage();
    assert.equal(initiator.readMessage(Buffer.concat([u, Buffer.alloc(16)])), null);
  }
});

test('random garbage of every length 0..300 is refused, never thrown', () => {
  const random = seededRandom(12);
  for (let length = 0; length <= 300; length++) {
    const garbage = Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
    assert.equal(pair().responder.readMessage(garbage), null, `msg1 of ${length} bytes`);
    const { initiator } = pair();
    initiator.writeMessage(randomBytes(12));
    assert.equal(initiator.readMessage(garbage), null, `msg2 of ${length} bytes`);
  }
});

test('a refused message leaves the state dead; out-of-turn calls throw', () => {
  const { initiator, responder } = pair();
  assert.throws(() => initiator.readMessage(Buffer.alloc(48)), /cannot read/);
  assert.throws(() => responder.writeMessage(), /cannot write/);
  assert.equal(responder.readMessage(Buffer.alloc(10)), null);
  assert.throws(() => responder.writeMessage(), /cannot write in step failed/);
  assert.throws(() => responder.split(), /before completion/);
});
