// The UDP impairment relay really does what its counters say: plain dgram sockets on both
// sides, numbered datagrams, and the receiver's own view compared with the relay's counters.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { UdpRelay, type Impairment } from '../support/relay';

const BUF = 4 * 1024 * 1024;
const REPEATS = 50; // a datagram is its u32 sequence number 50 times: any flipped bit shows

interface Arrival {
  seq: number;
  intact: boolean;
  sentAt: number;
  at: number;
  from: dgram.RemoteInfo;
}

async function bound(): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: BUF, sendBufferSize: BUF });
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  return s;
}

function datagram(seq: number, size = REPEATS * 4): Buffer {
  const b = Buffer.alloc(Math.max(size, REPEATS * 4 + 8));
  for (let i = 0; i < REPEATS; i++) b.writeUInt32BE(seq, i * 4);
  b.writeDoubleBE(performance.now(), REPEATS * 4);
  return b;
}

function parse(msg: Buffer, from: dgram.RemoteInfo): Arrival {
  const seq = msg.readUInt32BE(0);
  let intact = msg.length >= REPEATS * 4 + 8;
  for (let i = 1; intact && i < REPEATS; i++) intact = msg.readUInt32BE(i * 4) === seq;
  return { seq, intact, sentAt: msg.readDoubleBE(REPEATS * 4), at: performance.now(), from };
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Client -> relay -> target; sends `count` datagrams in small batches, returns what arrived. */
async function through(imp: Impairment, count: number, o: { size?: number; batch?: number; settleMs?: number } = {}) {
  const target = await bound();
  const client = await bound();
  const arrivals: Arrival[] = [];
  target.on('message', (msg, rinfo) => arrivals.push(parse(msg, rinfo)));
  const relay = await UdpRelay.start({ target: { address: '127.0.0.1', port: target.address().port }, toTarget: imp });
  try {
    const batch = o.batch ?? 50;
    for (let seq = 0; seq < count; seq++) {
      client.send(datagram(seq, o.size), relay.port, '127.0.0.1');
      if (seq % batch === batch - 1) await new Promise((r) => setImmediate(r));
    }
    const c = relay.counters.toTarget;
    await until(() => c.received === count, `the relay to receive ${count} datagrams (has ${c.received})`);
    await until(() => arrivals.length === c.forwarded && c.forwarded + c.lost + c.queueDrops === count + c.duplicated, 'every forwarded datagram to arrive', 20_000);
    await new Promise((r) => setTimeout(r, o.settleMs ?? 50));
    return { arrivals, counters: { ...c }, back: { ...relay.counters.toClient } };
  } finally {
    await relay.close();
    client.close();
    target.close();
  }
}

test('clean relay: everything arrives intact and in order; replies come back through a per-client mapping', async () => {
  const target = await bound();
  const clients = [await bound(), await bound()];
  const relay = await UdpRelay.start({ target: { address: '127.0.0.1', port: target.address().port } });
  const seenFrom = new Set<number>();
  target.on('message', (msg, rinfo) => {
    seenFrom.add(rinfo.port);
    target.send(msg, rinfo.port, rinfo.address); // echo
  });
  try {
    const echoes = clients.map(() => [] as Arrival[]);
    clients.forEach((c, i) => c.on('message', (msg, rinfo) => echoes[i]!.push(parse(msg, rinfo))));
    for (let seq = 0; seq < 200; seq++) clients[seq % 2]!.send(datagram(seq), relay.port, '127.0.0.1');
    await until(() => echoes[0]!.length === 100 && echoes[1]!.length === 100, 'both clients to get 100 echoes');
    assert.equal(relay.mappings, 2);
    assert.equal(seenFrom.size, 2, 'one upstream socket per client');
    for (const port of seenFrom) assert.ok(!clients.some((c) => c.address().port === port), 'the target sees the relay, not the client');
    for (const [i, list] of echoes.entries()) {
      assert.deepEqual(list.map((a) => a.seq), Array.from({ length: 100 }, (_, k) => 2 * k + i));
      assert.ok(list.every((a) => a.intact && a.from.port === relay.port));
    }
    assert.deepEqual(relay.counters.toTarget, { received: 200, forwarded: 200, lost: 0, duplicated: 0, reordered: 0, corrupted: 0, queueDrops: 0, tooBig: 0, bytesForwarded: 200 * datagram(0).length });
    assert.equal(relay.counters.toClient.forwarded, 200);
  } finally {
    await relay.close();
    clients.forEach((c) => c.close());
    target.close();
  }
});

test('20 % loss: the lost counter and the receiver agree, about 20 %', async () => {
  const { arrivals, counters } = await through({ lossPercent: 20, seed: 1 }, 2000);
  assert.equal(arrivals.length, 2000 - counters.lost);
  assert.equal(new Set(arrivals.map((a) => a.seq)).size, arrivals.length, 'no duplicates');
  assert.ok(counters.lost > 300 && counters.lost < 500, `lost ${counters.lost} of 2000`);
});

test('the same seed makes the same choices', async () => {
  const a = await through({ lossPercent: 30, seed: 42 }, 500);
  const b = await through({ lossPercent: 30, seed: 42 }, 500);
  assert.deepEqual(a.arrivals.map((x) => x.seq).sort((x, y) => x - y), b.arrivals.map((x) => x.seq).sort((x, y) => x - y));
});

test('10 % duplication: the receiver sees exactly the duplicated count of extra copies', async () => {
  const { arrivals, counters } = await through({ duplicatePercent: 10, seed: 2 }, 2000);
  const seen = new Map<number, number>();
  for (const a of arrivals) seen.set(a.seq, (seen.get(a.seq) ?? 0) + 1);
  const extra = [...seen.values()].reduce((s, n) => s + n - 1, 0);
  assert.equal(seen.size, 2000);
  assert.equal(extra, counters.duplicated);
  assert.ok(counters.duplicated > 120 && counters.duplicated < 280, `duplicated ${counters.duplicated}`);
});

test('10 % reordering: later datagrams overtake the held-back ones', async () => {
  const { arrivals, counters } = await through({ reorderPercent: 10, reorderDelayMs: 5, seed: 3 }, 2000, { batch: 20 });
  assert.equal(arrivals.length, 2000);
  let max = -1;
  let late = 0;
  for (const a of arrivals) {
    if (a.seq < max) late++;
    max = Math.max(max, a.seq);
  }
  assert.ok(counters.reordered > 100, `reordered ${counters.reordered}`);
  assert.ok(late > 0 && late <= counters.reordered, `${late} arrived after a later one (${counters.reordered} held back)`);
});

test('3 % corruption: exactly the corrupted count arrives altered', async () => {
  const { arrivals, counters } = await through({ corruptPercent: 3, seed: 4 }, 2000);
  assert.equal(arrivals.length, 2000);
  const altered = arrivals.filter((a) => !a.intact).length;
  assert.ok(counters.corrupted > 20, `corrupted ${counters.corrupted}`);
  assert.equal(altered, counters.corrupted);
});

test('30 ms delay with 5 ms jitter: no datagram is early, and jitter never reorders', async () => {
  const { arrivals } = await through({ delayMs: 30, jitterMs: 5, seed: 5 }, 300, { batch: 10 });
  assert.equal(arrivals.length, 300);
  const latencies = arrivals.map((a) => a.at - a.sentAt);
  assert.ok(Math.min(...latencies) >= 25, `min one-way latency ${Math.min(...latencies).toFixed(2)} ms`);
  assert.deepEqual(arrivals.map((a) => a.seq), Array.from({ length: 300 }, (_, i) => i));
});

test('rate limit: a blast above the rate fills the drop-tail queue, and what passes takes at least bytes/rate', async () => {
  const rateMbit = 20;
  const size = 1200;
  const t0 = performance.now();
  const { arrivals, counters } = await through({ rateMbit, queueBytes: 64 * 1024, seed: 6 }, 2000, { size, batch: 100 });
  assert.ok(counters.queueDrops > 0, 'queue drops');
  assert.equal(arrivals.length + counters.queueDrops, 2000);
  const last = Math.max(...arrivals.map((a) => a.at));
  const minMs = ((counters.bytesForwarded * 8) / (rateMbit * 1e6)) * 1000;
  assert.ok(last - t0 >= minMs * 0.99, `forwarded ${counters.bytesForwarded} B in ${(last - t0).toFixed(1)} ms, the rate allows no less than ${minMs.toFixed(1)} ms`);
});

test('toClient impairments apply to replies only, with their own counters', async () => {
  const target = await bound();
  const client = await bound();
  const relay = await UdpRelay.start({ target: { address: '127.0.0.1', port: target.address().port }, toClient: { lossPercent: 50, seed: 7 } });
  target.on('message', (msg, rinfo) => target.send(msg, rinfo.port, rinfo.address));
  let echoes = 0;
  client.on('message', () => echoes++);
  try {
    for (let seq = 0; seq < 1000; seq++) {
      client.send(datagram(seq), relay.port, '127.0.0.1');
      if (seq % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    const back = relay.counters.toClient;
    await until(() => back.received === 1000 && echoes === back.forwarded, 'the echoes');
    assert.equal(relay.counters.toTarget.lost, 0);
    assert.equal(relay.counters.toTarget.forwarded, 1000);
    assert.ok(back.lost > 400 && back.lost < 600, `lost ${back.lost} replies`);
    assert.equal(echoes, 1000 - back.lost);
  } finally {
    await relay.close();
    client.close();
    target.close();
  }
});
