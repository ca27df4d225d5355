// UDP transfers through the impairment relay: each case proves with the relay's counters that
// the impairment happened, and that the file still arrived byte-exact.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Impairment, RelayCounters } from '../support/relay';
import { tempDir } from '../support/cli';
import { pair, randomFile, sha256, transfer } from './support';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir('p2pshare-udp-relay-')));
after(async () => cleanup());

interface Case {
  name: string;
  size: number;
  /** Owner -> requester: the DATA direction. */
  data: Impairment;
  /** Requester -> owner: the ACK direction. */
  acks?: Impairment;
  check(data: RelayCounters, acks: RelayCounters, r: { duplicates: number; replayed: number; retransmitted: number }): void;
}

const MiB = 1024 * 1024;
const cases: Case[] = [
  {
    name: '1 % loss both ways',
    size: 8 * MiB,
    data: { lossPercent: 1, seed: 11 },
    acks: { lossPercent: 1, seed: 12 },
    check: (d, a, r) => {
      assert.ok(d.lost >= 30, `only ${d.lost} DATA lost`);
      assert.ok(a.lost >= 1, 'no ACK lost');
      assert.ok(r.retransmitted >= d.lost * 0.9, `${r.retransmitted} retransmitted for ${d.lost} lost`);
    },
  },
  {
    name: '5 % loss both ways',
    size: 8 * MiB,
    data: { lossPercent: 5, seed: 21 },
    acks: { lossPercent: 5, seed: 22 },
    check: (d, a) => {
      assert.ok(d.lost >= 250, `only ${d.lost} DATA lost`);
      assert.ok(a.lost >= 5, `only ${a.lost} ACKs lost`);
    },
  },
  {
    name: '20 % loss both ways',
    size: 4 * MiB,
    data: { lossPercent: 20, seed: 31 },
    acks: { lossPercent: 20, seed: 32 },
    check: (d, a) => {
      assert.ok(d.lost >= 0.15 * d.received, `${d.lost} of ${d.received} DATA lost`);
      assert.ok(a.lost >= 0.1 * a.received, `${a.lost} of ${a.received} ACKs lost`);
    },
  },
  {
    name: '10 % duplication',
    size: 8 * MiB,
    data: { duplicatePercent: 10, seed: 41 },
    acks: { duplicatePercent: 10, seed: 42 },
    check: (d, a, r) => {
      assert.ok(d.duplicated >= 400, `only ${d.duplicated} DATA duplicated`);
      assert.ok(a.duplicated >= 5, `only ${a.duplicated} ACKs duplicated`);
      // A duplicated datagram repeats a counter: the session's replay window drops it before the
      // receiver sees it (or the receiver finds the chunk already there).
      assert.ok(r.duplicates + r.replayed >= d.duplicated * 0.9, `${r.replayed} replays and ${r.duplicates} duplicates seen of ${d.duplicated}`);
    },
  },
  {
    name: '10 % reordering',
    size: 8 * MiB,
    data: { reorderPercent: 10, reorderDelayMs: 5, seed: 51 },
    acks: { reorderPercent: 10, seed: 52 },
    check: (d, a, r) => {
      assert.ok(d.reordered >= 400, `only ${d.reordered} DATA reordered`);
      assert.ok(a.reordered >= 5, `only ${a.reordered} ACKs reordered`);
      assert.equal(d.lost + d.queueDrops, 0);
      // Nothing was lost: the sender learns the path reorders and stops resending held-back data.
      assert.ok(r.retransmitted < d.reordered / 4, `${r.retransmitted} retransmitted for ${d.reordered} reordered, none lost`);
    },
  },
  {
    name: '3 % corruption',
    size: 8 * MiB,
    data: { corruptPercent: 3, seed: 61 },
    acks: { corruptPercent: 3, seed: 62 },
    check: (d, a) => {
      assert.ok(d.corrupted >= 150, `only ${d.corrupted} DATA corrupted`);
      assert.ok(a.corrupted >= 1, 'no ACK corrupted');
    },
  },
  {
    name: '20 ms one-way delay with a 50 Mbit/s rate limit',
    size: 8 * MiB,
    data: { delayMs: 20, rateMbit: 50, seed: 71 },
    acks: { delayMs: 20, seed: 72 },
    check: (d, _a, r) => {
      assert.ok(d.bytesForwarded >= 8 * MiB);
      // The counters cannot show delay; the run's duration can: 8 MiB at 50 Mbit/s takes >= 1.34 s.
      assert.ok(r.duplicates >= 0);
    },
  },
];

for (const c of cases) {
  test(`through the relay, ${c.name}: byte-exact and the relay's counters prove the impairment`, async () => {
    const src = join(dir, `src-${c.size}-${c.data.seed}`);
    const digest = await randomFile(src, c.size);
    const p = await pair({ toClient: c.data, toTarget: c.acks ?? {} });
    try {
      const started = performance.now();
      const r = await transfer(p, src, c.size, dir);
      const seconds = (performance.now() - started) / 1000;
      const data = p.relay!.counters.toClient;
      const acks = p.relay!.counters.toTarget;
      assert.equal((await stat(r.partPath)).size, c.size);
      assert.equal(await sha256(r.partPath), digest);
      assert.ok(data.received > c.size / 1200, 'the DATA did not go through the relay');
      c.check(data, acks, { duplicates: r.received.duplicates, replayed: p.requester.drops.replayed, retransmitted: r.sent.retransmitted });
      if (c.data.corruptPercent) {
        // Every corrupted datagram is dropped: most fail authentication, a flipped header bit may fail earlier.
        const d = p.requester.drops;
        const dropped = d.bad_auth + d.bad_magic + d.bad_checksum + d.bad_version + d.unknown_type;
        assert.ok(d.bad_auth >= data.corrupted * 0.8 && dropped >= data.corrupted * 0.95, `${d.bad_auth} failed authentication, ${dropped} dropped, of ${data.corrupted} corrupted`);
      }
      if (c.data.rateMbit) assert.ok(seconds >= (c.size * 8) / (c.data.rateMbit * 1e6), `finished in ${seconds} s: faster than the link, the rate limit did not apply`);
    } finally {
      await p.close();
    }
  });
}
