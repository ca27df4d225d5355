import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  decodeTai64n,
  encodeTai64n,
  TimestampClock,
  timestamp,
  TimestampReplayGuard,
  TIMESTAMP_WINDOW_NS,
} from '../../src/crypto/timestamp';

const S = 1_000_000_000n;
const T0 = 1_750_000_000n * S + 123_456_789n;
const at = (ns: bigint) => encodeTai64n(ns);

test('TAI64N: u64 2^62 + unix seconds, u32 nanoseconds', () => {
  assert.equal(encodeTai64n(0n).toString('hex'), '400000000000000000000000');
  assert.equal(encodeTai64n(T0).toString('hex'), '40000000684ee180' + '075bcd15');
  assert.equal(decodeTai64n(encodeTai64n(T0)), T0);
  assert.equal(decodeTai64n(Buffer.alloc(11)), null);
  assert.equal(decodeTai64n(Buffer.alloc(13)), null);
  assert.equal(decodeTai64n(Buffer.from('3fffffffffffffff00000000', 'hex')), null); // before 1970
  assert.equal(decodeTai64n(Buffer.from('40000000000000003b9aca00', 'hex')), null); // 10^9 ns
  assert.equal(decodeTai64n(Buffer.from('40000000000000003b9ac9ff', 'hex')), 999_999_999n);
});

test('timestamps strictly increase, even when the clock stalls or steps back', () => {
  const readings = [5n * S, 5n * S, 4n * S, 6n * S, 6n * S];
  const clock = new TimestampClock(() => readings.shift()!);
  const got = Array.from({ length: 5 }, () => decodeTai64n(clock.next())!);
  assert.deepEqual(got, [5n * S, 5n * S + 1n, 5n * S + 2n, 6n * S, 6n * S + 1n]);
  let last = -1n;
  for (let i = 0; i < 10_000; i++) {
    const t = decodeTai64n(timestamp())!;
    assert.ok(t > last);
    last = t;
  }
  const wall = BigInt(Date.now()) * 1_000_000n;
  assert.ok(last >= wall - 5n * S && last <= wall + 5n * S);
});

test('a replayed timestamp is refused; newer ones, and older ones within 10 s not seen, are accepted', () => {
  const guard = new TimestampReplayGuard();
  const key = randomBytes(32);
  assert.ok(guard.accept(key, at(T0)));
  assert.equal(guard.accept(key, at(T0)), false);
  assert.ok(guard.accept(key, at(T0 + S)));
  assert.ok(guard.accept(key, at(T0 - 3n * S))); // a slower packet of a concurrent handshake
  assert.equal(guard.accept(key, at(T0 - 3n * S)), false);
  assert.ok(guard.accept(key, at(T0 + S - TIMESTAMP_WINDOW_NS + 1n)));
  assert.equal(guard.accept(key, at(T0 + S - TIMESTAMP_WINDOW_NS)), false); // exactly max - 10 s
  assert.equal(guard.accept(key, at(T0 - 60n * S)), false);
  assert.equal(guard.accept(key, Buffer.alloc(12)), false);
  assert.equal(guard.accept(key, randomBytes(11)), false);
  assert.ok(guard.accept(randomBytes(32), at(T0 - 60n * S)), 'another key has its own history');
});

test('concurrent initiators with close, interleaved timestamps are all accepted, each replay refused', () => {
  const guard = new TimestampReplayGuard();
  const keys = [randomBytes(32), randomBytes(32), randomBytes(32)];
  // Two processes share keys[0]; their timestamps interleave and arrive out of order.
  const sent: [Buffer, bigint][] = [];
  for (let i = 0; i < 30; i++) {
    const key = keys[i % 3]!;
    sent.push([key, T0 + BigInt(i) * 1_000_000n + (i % 2 ? 7n : 0n)]);
    if (i % 3 === 0) sent.push([key, T0 + BigInt(i) * 1_000_000n - 500_000n]);
  }
  const order = [...sent].reverse();
  for (const [key, ts] of order) assert.ok(guard.accept(key, at(ts)), `first ${ts}`);
  for (const [key, ts] of order) assert.equal(guard.accept(key, at(ts)), false, `replay ${ts}`);
});

test('beyond 32 recent timestamps the oldest is dropped and everything at or below it refused', () => {
  const guard = new TimestampReplayGuard();
  const key = randomBytes(32);
  assert.ok(guard.accept(key, at(T0)));
  for (let i = 1; i <= 33; i++) assert.ok(guard.accept(key, at(T0 - BigInt(i) * 100_000_000n)), `${i}`);
  // 33 below max: the oldest (T0 - 3.3 s) was dropped, so it and anything older is refused.
  assert.equal(guard.accept(key, at(T0 - 33n * 100_000_000n)), false);
  assert.equal(guard.accept(key, at(T0 - 33n * 100_000_000n - 1n)), false);
  assert.ok(guard.accept(key, at(T0 - 33n * 100_000_000n + 1n))); // newer than the dropped one
  // The floor stays put as max rises, until the window passes it.
  assert.ok(guard.accept(key, at(T0 + S)));
  assert.equal(guard.accept(key, at(T0 - 33n * 100_000_000n - 1n)), false);
  assert.equal(guard.accept(key, at(T0 - 32n * 100_000_000n)), false); // seen
  assert.ok(guard.accept(key, at(T0 - 50_000_000n)));
});

test('a jump of more than 10 s forgets the recent list', () => {
  const guard = new TimestampReplayGuard();
  const key = randomBytes(32);
  guard.accept(key, at(T0));
  guard.accept(key, at(T0 - S));
  assert.ok(guard.accept(key, at(T0 + 60n * S)));
  assert.equal(guard.accept(key, at(T0)), false);
  assert.ok(guard.accept(key, at(T0 + 55n * S)));
  assert.equal(guard.accept(key, at(T0 + 55n * S)), false);
});

test('the keys are a bounded LRU', () => {
  const guard = new TimestampReplayGuard(3);
  const [a, b, c, d] = [randomBytes(32), randomBytes(32), randomBytes(32), randomBytes(32)];
  guard.accept(a, at(T0));
  guard.accept(b, at(T0));
  guard.accept(c, at(T0));
  guard.accept(a, at(T0 + 1n)); // a used most recently: b is the oldest
  guard.accept(d, at(T0));
  assert.equal(guard.size, 3);
  assert.equal(guard.accept(a, at(T0 + 1n)), false);
  assert.equal(guard.accept(c, at(T0)), false);
  assert.ok(guard.accept(b, at(T0)), 'b was forgotten (the price of the bound)');
  assert.equal(guard.size, 3);
});
