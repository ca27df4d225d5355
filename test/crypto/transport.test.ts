// Sealed-frame ciphers: explicit counters with Noise's nonce encoding, epochs of Rekey, and
// nothing but an authenticated frame changes the opener's state.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CipherState } from '../../src/crypto/noise';
import { COUNTER_LIMIT, Opener, Sealer } from '../../src/crypto/transport';

const key = randomBytes(32);
const ad = Buffer.from('PS\x02\x04\0\0\0\x07counter!');
const body = (n: number) => Buffer.from(`frame ${n}`);

test('sealing counters 0, 1, 2 with no rekey is Noise CipherState with nonces 0, 1, 2', () => {
  const sealer = new Sealer(key);
  const noise = new CipherState(key);
  for (let n = 0; n < 3; n++) assert.deepEqual(sealer.seal(n, ad, body(n)), noise.encryptWithAd(ad, body(n)));
});

test('the parts are sealed as one plaintext; the opener gets it back', () => {
  const sealer = new Sealer(key);
  const opener = new Opener(key);
  const parts = [Buffer.of(0x10), randomBytes(4), Buffer.alloc(0), randomBytes(1195)];
  const sealed = sealer.seal(7, ad, ...parts);
  assert.equal(sealed.length, 1200 + 16);
  assert.deepEqual(sealed, new Sealer(key).seal(7, ad, Buffer.concat(parts)));
  assert.deepEqual(opener.open(7, ad, sealed), Buffer.concat(parts));
  assert.deepEqual(opener.open(8, ad, sealer.seal(8, ad)), Buffer.alloc(0));
});

test('another counter, AD, key, a flipped bit or a short input does not open', () => {
  const sealed = new Sealer(key).seal(5, ad, body(5));
  const opener = new Opener(key);
  assert.equal(opener.open(6, ad, sealed), null);
  assert.equal(opener.open(5, Buffer.concat([ad.subarray(0, 15), Buffer.of(0)]), sealed), null);
  assert.equal(new Opener(randomBytes(32)).open(5, ad, sealed), null);
  for (let bit = 0; bit < sealed.length * 8; bit++) {
    const bad = Buffer.from(sealed);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    assert.equal(opener.open(5, ad, bad), null, `bit ${bit}`);
  }
  for (let length = 0; length < 16; length++) assert.equal(opener.open(5, ad, sealed.subarray(0, length)), null);
  assert.deepEqual(opener.open(5, ad, sealed), body(5));
});

test('counters at or above 2^48, negative or fractional: seal throws, open refuses', () => {
  const sealer = new Sealer(key, 2 ** 44);
  const last = sealer.seal(COUNTER_LIMIT - 1, ad, body(0));
  assert.deepEqual(new Opener(key, 2 ** 44).open(COUNTER_LIMIT - 1, ad, last), body(0));
  for (const bad of [COUNTER_LIMIT, COUNTER_LIMIT + 1, -1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => new Sealer(key).seal(bad, ad), /outside 0\.\.2\^48-1/);
    assert.equal(new Opener(key).open(bad, ad, last), null);
  }
});

test('the sealer never seals a counter twice or goes back', () => {
  const sealer = new Sealer(key);
  sealer.seal(3, ad);
  assert.throws(() => sealer.seal(3, ad), /again/);
  assert.throws(() => sealer.seal(1, ad), /again/);
  sealer.seal(10, ad);
});

test('epochs: the key for counter n is Rekey applied floor(n / interval) times', () => {
  const sealer = new Sealer(key, 4);
  const opener = new Opener(key, 4);
  for (let n = 0; n < 40; n++) {
    const sealed = sealer.seal(n, ad, body(n));
    const k = new CipherState(key);
    for (let e = 0; e < Math.floor(n / 4); e++) k.rekey();
    assert.deepEqual(opener.open(n, ad, sealed), body(n), `counter ${n}`);
    assert.deepEqual(sealed, sealWith(k, n), `counter ${n}`);
  }
});

/** Seals counter n under the key held by a Noise CipherState, by moving its nonce up to n. */
function sealWith(k: CipherState, n: number): Buffer {
  for (let i = 0; i < n; i++) k.encryptWithAd(ad, Buffer.alloc(0));
  return k.encryptWithAd(ad, body(n));
}

test('the opener keeps the previous epoch for late frames, derives forward, never back', () => {
  const sealer = new Sealer(key, 4);
  const sealed = Array.from({ length: 80 }, (_, n) => sealer.seal(n, ad, body(n)));
  const opener = new Opener(key, 4);
  assert.deepEqual(opener.open(0, ad, sealed[0]!), body(0));
  assert.deepEqual(opener.open(30, ad, sealed[30]!), body(30)); // epoch 0 -> 7
  assert.deepEqual(opener.open(27, ad, sealed[27]!), body(27)); // epoch 6, the previous one
  assert.equal(opener.open(23, ad, sealed[23]!), null); // epoch 5: gone
  assert.equal(opener.open(0, ad, sealed[0]!), null);
  assert.deepEqual(opener.open(33, ad, sealed[33]!), body(33)); // 8: one ahead
  assert.deepEqual(opener.open(31, ad, sealed[31]!), body(31)); // 7, now the previous
  assert.equal(opener.open(26, ad, sealed[26]!), null);
});

test('a forged frame from a later epoch moves nothing; more than 16 epochs ahead is refused', () => {
  const sealer = new Sealer(key, 4);
  const sealed = Array.from({ length: 80 }, (_, n) => sealer.seal(n, ad, body(n)));
  const opener = new Opener(key, 4);
  assert.equal(opener.open(20, ad, randomBytes(30)), null);
  assert.equal(opener.open(64, ad, randomBytes(30)), null);
  assert.deepEqual(opener.open(1, ad, sealed[1]!), body(1)); // still epoch 0
  assert.deepEqual(opener.open(5, ad, sealed[5]!), body(5));
  assert.deepEqual(opener.open(2, ad, sealed[2]!), body(2)); // 0 is now the previous epoch
  assert.equal(opener.open(4 * 18, ad, sealed[72]!), null); // epoch 18 from epoch 1: 17 ahead
  assert.deepEqual(opener.open(4 * 17, ad, sealed[68]!), body(68)); // 16 ahead
});

test('sealDetached is seal() apart; openPieces opens sealed bytes cut anywhere, the tag too, and refuses what open() refuses', () => {
  const key = randomBytes(32);
  const ad = randomBytes(2);
  const plaintext = randomBytes(5000);
  const joined = new Sealer(key).seal(7, ad, plaintext);
  const [ciphertext, tag] = new Sealer(key).sealDetached(7, ad, plaintext);
  assert.deepEqual(Buffer.concat([ciphertext, tag]), joined);
  for (const cuts of [[], [1], [4999], [5000], [5001], [5015], [1, 2, 3, 5010], [2500, 5008]]) {
    const pieces: Buffer[] = [];
    let from = 0;
    for (const c of [...cuts, joined.length]) {
      pieces.push(joined.subarray(from, c));
      from = c;
    }
    const opened = new Opener(key).openPieces(7, ad, pieces);
    assert.ok(opened, `cut at ${cuts}`);
    assert.deepEqual(Buffer.concat(opened), plaintext, `cut at ${cuts}`);
    const bad = pieces.map((p) => Buffer.from(p));
    bad[bad.length - 1]![bad[bad.length - 1]!.length - 1]! ^= 1;
    assert.equal(new Opener(key).openPieces(7, ad, bad), null, `a flipped tag bit, cut at ${cuts}`);
    assert.equal(new Opener(key).openPieces(8, ad, pieces), null, 'another counter');
  }
  assert.equal(new Opener(key).openPieces(0, ad, [Buffer.alloc(10), Buffer.alloc(5)]), null, 'shorter than a tag');
});

