import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REPLAY_WINDOW, ReplayWindow } from '../../src/crypto/replay';
import { seededRandom } from '../support/random';

test('counter 0 first, then in order; each only once', () => {
  const w = new ReplayWindow();
  assert.equal(w.highest, -1);
  for (let n = 0; n < 20_000; n++) {
    assert.ok(w.check(n));
    assert.ok(w.accept(n));
    assert.equal(w.check(n), false);
    assert.equal(w.accept(n), false);
  }
  assert.equal(w.highest, 19_999);
});

test('counter 0 late, within the window, once', () => {
  const w = new ReplayWindow();
  assert.ok(w.accept(5));
  assert.ok(w.accept(0));
  assert.equal(w.accept(0), false);
  assert.ok(w.accept(REPLAY_WINDOW - 1));
  assert.ok(w.accept(REPLAY_WINDOW));
  assert.equal(w.check(0), false); // now too old
});

test('reordering within the window is accepted; duplicates are not', () => {
  const w = new ReplayWindow();
  const order = [3, 1, 2, 0, 10, 7, 9, 8, 4, 6, 5];
  for (const n of order) assert.ok(w.accept(n), `first ${n}`);
  for (const n of order) assert.equal(w.accept(n), false, `again ${n}`);
  assert.equal(w.highest, 10);
});

test('the window edge: highest - 8191 accepted, highest - 8192 too old', () => {
  const w = new ReplayWindow();
  w.accept(100_000);
  assert.equal(w.check(100_000 - REPLAY_WINDOW), false);
  assert.equal(w.accept(100_000 - REPLAY_WINDOW), false);
  assert.ok(w.accept(100_000 - REPLAY_WINDOW + 1));
  assert.equal(w.accept(100_000 - REPLAY_WINDOW + 1), false);
});

test('big jumps forget everything below the new window, but not what is inside it', () => {
  const w = new ReplayWindow();
  for (let n = 0; n < 100; n++) w.accept(n);
  w.accept(50_000);
  assert.equal(w.check(99), false);
  // Nothing from before the jump is marked inside the new window.
  for (let n = 50_000 - REPLAY_WINDOW + 1; n < 50_000; n++) assert.ok(w.check(n), `${n}`);
  w.accept(49_990);
  w.accept(2 ** 48 - 1);
  assert.equal(w.check(50_000), false);
  assert.ok(w.check(2 ** 48 - 2));
  assert.equal(w.check(2 ** 48 - 1), false);
  // A jump of less than the ring clears only the words it passes.
  w.accept(2 ** 48 - 1 + 40);
  assert.equal(w.check(2 ** 48 - 1), false);
  assert.ok(w.check(2 ** 48 + 20));
});

test('check() changes nothing; negative and fractional counters are refused', () => {
  const w = new ReplayWindow();
  assert.ok(w.check(1_000_000));
  assert.equal(w.highest, -1);
  for (const bad of [-1, 0.5, Number.NaN, Infinity, 2 ** 53]) {
    assert.equal(w.check(bad), false);
    assert.equal(w.accept(bad), false);
  }
});

test('agrees with a plain set over a random walk with reordering, duplicates and jumps', () => {
  const random = seededRandom(6479);
  const w = new ReplayWindow();
  const seen = new Set<number>();
  let highest = -1;
  let at = 0;
  for (let i = 0; i < 200_000; i++) {
    const r = random();
    at = r < 0.001 ? at + Math.floor(random() * 40_000) : Math.max(0, at + Math.floor(random() * 64) - 40);
    const expected = at > highest || (highest - at < REPLAY_WINDOW && !seen.has(at));
    assert.equal(w.check(at), expected, `step ${i}, counter ${at}`);
    assert.equal(w.accept(at), expected);
    if (expected) {
      seen.add(at);
      highest = Math.max(highest, at);
    }
  }
});
