// The load generator's heartbeat schedule (bench/beat-wheel.ts): beats come due once a period at
// each peer's phase, and a generator that falls behind skips and counts beats instead of queueing
// them without bound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BeatWheel, TICK_MS } from '../../bench/beat-wheel';

test('each peer comes due once a period, at the phase it registered at', () => {
  const wheel = new BeatWheel(3, 1000);
  wheel.add(0, 0);
  wheel.add(1, 300);
  wheel.add(2, 700);
  const seen: Array<[number, number]> = [];
  for (let now = 0; now <= 3000; now += TICK_MS) {
    wheel.advance(now);
    for (let b; (b = wheel.next(now)); ) seen.push([b.peer, now]);
  }
  assert.deepEqual(seen, [[0, 1000], [1, 1300], [2, 1700], [0, 2000], [1, 2300], [2, 2700], [0, 3000]]);
  assert.equal(wheel.offered, 7);
  assert.equal(wheel.skipped, 0);
});

test('a generator that takes nothing for many periods holds each peer once and counts the rest as skipped', () => {
  const peers = 1000;
  const wheel = new BeatWheel(peers, 1000);
  for (let i = 0; i < peers; i++) wheel.add(i, i % 1000);
  for (let now = 0; now <= 10_000; now += TICK_MS) wheel.advance(now);
  assert.equal(wheel.backlog, peers, 'each peer waits once, however long the generator is behind');
  assert.ok(wheel.skipped >= 8 * peers, `skipped ${wheel.skipped}`);
  assert.equal(wheel.offered - wheel.skipped, peers);
  const first = wheel.next(10_000)!;
  assert.ok(first.lagMs >= 0 && first.lagMs < 1000, `the waiting beat is the newest one due: lag ${first.lagMs}`);
  let taken = 1;
  while (wheel.next(10_000)) taken++;
  assert.equal(taken, peers);
  assert.equal(wheel.backlog, 0);
});

test('an event loop stalled past a whole period does not replay the periods it missed', () => {
  const wheel = new BeatWheel(1, 1000);
  wheel.add(0, 0);
  wheel.advance(0);
  wheel.advance(60_000);
  assert.equal(wheel.offered, 1, 'one beat for the last period only');
  assert.equal(wheel.next(60_000)!.peer, 0);
});
