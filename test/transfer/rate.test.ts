// The UDP sender's rate control at the start of a transfer: the first delivery samples must not
// drag the pacing rate below an initial window per round trip, and time spent before the first
// send must not count in the first sample. Pure arithmetic on given times: no sockets, no clocks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INITIAL_WINDOW_PACKETS, RateControl } from '../../src/transfer/udp/rate';

const PKT = 1200;

/** Sends `n` packets at `t` (ms) and acknowledges them all at `ackAt`; returns the rate control. */
function firstFlight(rc: RateControl, t: number, n: number, ackAt: number): void {
  let inflight = 0;
  const snaps = [];
  for (let i = 0; i < n; i++) {
    rc.onSend(t, inflight++);
    snaps.push(rc.snapshot(t));
  }
  rc.onRtt(ackAt - t, ackAt);
  rc.onDelivered(n * PKT, snaps[n - 1], n - 1, n, ackAt, 0, PKT);
}

test('in startup the pacing rate stays at least 2.89 x the initial window per minimum RTT', () => {
  const rc = new RateControl(PKT);
  // A slow first flight: 2 packets acknowledged after 0.5 ms, a delivery rate of 4.8 MB/s.
  firstFlight(rc, 100, 2, 100.5);
  assert.ok(rc.inStartup);
  const floor = (2.89 * INITIAL_WINDOW_PACKETS * PKT * 1000) / 0.5;
  assert.ok(rc.pacingRate() >= floor * 0.999, `pacing ${rc.pacingRate()} B/s below ${floor}`);
  assert.ok(rc.btlBw() < floor / 2.89, 'the test needs a sample below the floor to mean anything');
});

test('on a 40 ms path the initial-window floor stays below the 4 MB/s initial rate', () => {
  const rc = new RateControl(PKT);
  firstFlight(rc, 0, 10, 40);
  assert.ok(rc.pacingRate() < 4_000_000, `pacing ${rc.pacingRate()} B/s`);
});

test('time before the first send does not dilute the first delivery sample', () => {
  const rc = new RateControl(PKT); // created at "now"; the first send comes 50 ms later
  const start = performance.now() + 50;
  firstFlight(rc, start, 10, start + 1);
  // 10 packets delivered in 1 ms: 12 MB/s. Counted from the rate control's creation it would be
  // 12,000 B / 51 ms, about 0.24 MB/s.
  assert.ok(rc.btlBw() > 10_000_000, `first sample ${rc.btlBw()} B/s`);
});
