// The relay's sessions and caps (src/registry/relay.ts) on a clock the test moves: which leg a
// frame goes to, a requester's port learnt from its first frame, and every cap.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RelaySessions, type RelayEvent, type RelayLimits } from '../../src/registry/relay';

const owner = { ip: '198.51.100.1', port: 1111 };
const requester = { ip: '203.0.113.9', port: 2222 };

function relay(limits: Partial<RelayLimits> = {}) {
  let now = 0;
  const events: RelayEvent[] = [];
  const r = new RelaySessions(
    { maxSessions: 4, sessionBytesPerSecond: 1e9, sessionBytes: 1e12, totalBytesPerSecond: 1e9, idleMs: 60_000, ...limits },
    (e) => events.push(e),
    () => now,
  );
  return { r, events, advance: (ms: number) => (now += ms), count: (e: RelayEvent) => events.filter((x) => x === e).length };
}

test('a frame goes from one leg to the other; a third address, an unknown session: dropped and counted', () => {
  const { r, count } = relay();
  try {
    const id = r.open('o', owner, requester);
    assert.ok(id > 0 && id <= 0xffffffff);
    assert.deepEqual(r.forward(id, requester, 100), owner);
    assert.deepEqual(r.forward(id, owner, 100), requester);
    assert.equal(r.forward(id, { ip: requester.ip, port: 2223 }, 100), null, 'the right address, another port');
    assert.equal(r.forward(id, { ip: '192.0.2.1', port: 2222 }, 100), null);
    assert.equal(r.forward(id + 1, requester, 100), null);
    assert.equal(count('relay_forwarded'), 2);
    assert.equal(count('relay_dropped_stranger'), 2);
    assert.equal(count('relay_dropped_unknown'), 1);
    assert.equal(r.bytesForwarded, 200);
    // The owner's mapping moved (a keepalive from a new source): the session follows.
    const moved = { ip: owner.ip, port: 1112 };
    r.moveOwner('o', moved);
    assert.deepEqual(r.forward(id, requester, 10), moved);
    assert.equal(r.forward(id, owner, 10), null, 'the old mapping is a stranger now');
  } finally {
    r.close();
  }
});

test("introduced by another process: the requester's port is learnt from its first frame, then fixed", () => {
  const { r, count } = relay();
  try {
    const id = r.open('o', owner, { ip: requester.ip, port: null });
    assert.equal(r.forward(id, owner, 50), null, 'nowhere to send yet');
    assert.equal(count('relay_dropped_early'), 1);
    assert.deepEqual(r.forward(id, requester, 50), owner);
    assert.deepEqual(r.forward(id, owner, 50), requester);
    assert.equal(r.forward(id, { ip: requester.ip, port: 3333 }, 50), null, 'learnt once');
  } finally {
    r.close();
  }
});

test('caps: sessions held, bytes a second per session and in all, bytes per session, idle', () => {
  {
    const { r, count } = relay({ maxSessions: 2 });
    assert.ok(r.open('a', owner, requester) > 0);
    assert.ok(r.open('b', owner, requester) > 0);
    assert.equal(r.open('c', owner, requester), 0, 'full');
    assert.equal(count('relay_refused_full'), 1);
    r.close();
  }
  {
    // 10 000 B/s: a burst of 2500 (a quarter second), then 10 bytes a millisecond.
    const { r, count, advance } = relay({ sessionBytesPerSecond: 10_000 });
    const id = r.open('a', owner, requester);
    const other = r.open('b', owner, requester);
    assert.ok(r.forward(id, requester, 1400));
    assert.ok(r.forward(id, requester, 1000));
    assert.equal(r.forward(id, requester, 1000), null, 'over the burst');
    assert.equal(count('relay_dropped_rate'), 1);
    assert.ok(r.forward(other, requester, 1400), 'another session has its own budget');
    advance(100);
    assert.ok(r.forward(id, requester, 1000), '1000 bytes back after 100 ms');
    r.close();
  }
  {
    const { r, count } = relay({ totalBytesPerSecond: 10_000 });
    const a = r.open('a', owner, requester);
    const b = r.open('b', owner, requester);
    assert.ok(r.forward(a, requester, 1472));
    assert.ok(r.forward(b, requester, 1000));
    assert.equal(r.forward(b, requester, 1000), null, 'the total budget is shared');
    assert.equal(count('relay_dropped_total_rate'), 1);
    r.close();
  }
  {
    const { r, count } = relay({ sessionBytes: 3000 });
    const id = r.open('a', owner, requester);
    assert.ok(r.forward(id, requester, 1400));
    assert.ok(r.forward(id, owner, 1400));
    assert.equal(r.forward(id, requester, 1400), null, 'past 3000 bytes');
    assert.equal(count('relay_closed_bytes'), 1);
    assert.equal(r.forward(id, requester, 10), null, 'the session is over');
    assert.equal(count('relay_dropped_unknown'), 1);
    assert.equal(r.size, 0);
    r.close();
  }
  {
    const { r, count, advance } = relay({ idleMs: 1000 });
    const busy = r.open('a', owner, requester);
    const idle = r.open('b', owner, requester);
    advance(600);
    assert.ok(r.forward(busy, requester, 10));
    advance(600);
    r.sweep();
    assert.equal(count('relay_closed_idle'), 1);
    assert.equal(r.forward(idle, requester, 10), null);
    assert.ok(r.forward(busy, requester, 10), 'active 600 ms ago: kept');
    r.close();
  }
});
