// Keyed token buckets with a burst apart from the rate (the handshake's global and per-address limits).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBuckets } from '../../src/core/token-bucket';

test('a burst of `burst`, then `perSecond`; keys apart; full buckets forgotten; the LRU bounded', () => {
  let now = 0;
  const b = new TokenBuckets({ perSecond: 10, burst: 3, maxKeys: 2, now: () => now });
  for (let i = 0; i < 3; i++) assert.equal(b.take('x'), 0);
  assert.equal(b.take('x'), 100, 'the next token in 100 ms at 10 a second');
  assert.equal(b.available('y'), 3, 'another key starts full');
  now = 100;
  assert.equal(b.take('x'), 0);
  now = 10_000;
  assert.equal(b.available('x'), 3, 'never past the burst');
  b.forget();
  assert.equal(b.size, 0, 'a full bucket holds nothing a fresh one would not');
  for (const k of ['a', 'b', 'c']) b.take(k);
  assert.equal(b.size, 2, 'at most maxKeys remembered');
  assert.equal(b.available('a'), 3, 'the least recently used key was forgotten (it refills)');
});

test('a cost takes that many tokens at once: a byte budget', () => {
  let now = 0;
  const b = new TokenBuckets({ perSecond: 1000, burst: 1500, now: () => now });
  assert.equal(b.take('s', now, 1400), 0);
  assert.equal(b.take('s', now, 200), 100, '100 more bytes take 100 ms at 1000 a second');
  assert.equal(b.available('s'), 100, 'a refused take takes nothing');
  now = 100;
  assert.equal(b.take('s', now, 200), 0);
  assert.equal(b.take('s', now, 1), 1);
});
