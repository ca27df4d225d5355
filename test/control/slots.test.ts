// The owner's transfer slots under abuse, in this process with real sockets (short timers where
// the real ones would take the suite too long): per-requester caps, tickets that expire and can
// be taken over, and requesters that stop reading losing their slots.
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { ControlClient } from '../../src/control/client';
import type { SecureConnection } from '../../src/net/connection';
import type { Endpoint } from '../../src/net/endpoint';
import { tcpRefusals } from '../../src/transfer/tcp-server';
import { GetStatus, type TransportName } from '../../src/wire/control';
import { decodeData, encodeAck } from '../../src/wire/transfer';
import { FrameType } from '../../src/wire/frame';
import { tempDir } from '../support/cli';
import { connect, requesterEndpoint, tcpHello } from '../support/secure';
import { randomFile } from '../peer/support';
import { owner } from './support';

type InProcessOwner = Awaited<ReturnType<typeof owner>>;

interface Requester {
  ep: Endpoint;
  conn: SecureConnection;
  client: ControlClient;
  key: string;
  nextSession: number;
  get(transport?: TransportName): Promise<{ status: number; sessionId: number }>;
}

async function requester(o: InProcessOwner, file: string): Promise<Requester> {
  const ep = await requesterEndpoint();
  const conn = await connect(ep, o.side);
  const client = new ControlClient(ep);
  const r: Requester = {
    ep,
    conn,
    client,
    key: ep.identity.publicKey.toString('base64url'),
    nextSession: 1,
    async get(transport: TransportName = 'tcp') {
      const sessionId = r.nextSession++;
      const maxPayload = transport === 'udp' ? 1200 : 0;
      const answer = await client.get(conn, o.side.name, { transport, sessionId, offset: 0, expectedSha256: null, maxPayload, name: file });
      return { status: answer.status, sessionId };
    },
  };
  return r;
}

/** Opens the TCP stream of an ok GET, reads its first bytes, then stops reading for good. */
async function stalledReader(o: InProcessOwner, r: Requester, sessionId: number): Promise<net.Socket> {
  const socket = net.connect(o.port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve) => {
    socket.on('connect', () => socket.write(tcpHello(r.conn, sessionId)));
    socket.once('data', () => {
      socket.pause(); // a paused socket reads nothing: it will not even see the owner hang up
      resolve();
    });
  });
  return socket;
}

/** Eight keys taking four slots each (all 32) for a.bin; they are added to `keys` as they come. */
async function fillEverySlot(o: InProcessOwner, keys: Requester[], transport: TransportName): Promise<void> {
  for (let k = 0; k < 8; k++) {
    const r = await requester(o, 'a.bin');
    keys.push(r);
    for (let i = 0; i < 4; i++) assert.equal((await r.get(transport)).status, GetStatus.ok);
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
  return Date.now() - t0;
}

test('one requester key gets at most 4 slots: its flood of unredeemed GETs is busy while another key is admitted; its tickets expire after 5 s', async () => {
  const { dir, cleanup } = await tempDir();
  const file = join(dir, 'a.txt');
  await randomFile(file, 1000);
  const o = await owner([file]);
  const flooder = await requester(o, 'a.txt');
  const other = await requester(o, 'a.txt');
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await flooder.get()).status);
    assert.deepEqual(statuses.slice(0, 4), [GetStatus.ok, GetStatus.ok, GetStatus.ok, GetStatus.ok]);
    assert.ok(statuses.slice(4).every((s) => s === GetStatus.busy), `past 4, every GET is busy: ${statuses}`);
    assert.equal(o.control.slots.heldBy(flooder.key), 4);
    const lastOk = Date.now();
    assert.equal((await other.get()).status, GetStatus.ok, 'another key is admitted while the flooder is at its cap');
    // Nobody redeems them: the tickets are dropped 5 s after their answer and the slots come back.
    await until('the flooder slots freed', () => o.control.slots.heldBy(flooder.key) === 0, 7000);
    const freedAfter = Date.now() - lastOk;
    assert.ok(freedAfter <= 6000, `tickets released ${freedAfter} ms after the last one was answered`);
    assert.equal((await flooder.get()).status, GetStatus.ok);
  } finally {
    await flooder.ep.close();
    await other.ep.close();
    await o.close();
    await cleanup();
  }
});

test('many keys filling every slot with unredeemed tickets cannot keep a newcomer out: it takes the place of a ticket of the largest holder', async () => {
  const { dir, cleanup } = await tempDir();
  const file = join(dir, 'a.bin');
  await randomFile(file, 64 * 1024 * 1024);
  const o = await owner([file], { ticketTtlMs: 60_000, udp: { idleTimeoutMs: 60_000, progressTimeoutMs: 60_000 } });
  const keys: Requester[] = [];
  try {
    await fillEverySlot(o, keys, 'tcp');
    assert.equal(o.control.slots.active, 32, 'every slot taken by unredeemed tickets');
    assert.equal((await keys[0]!.get()).status, GetStatus.busy, 'a key at its own cap gets busy');
    const newcomer = await requester(o, 'a.bin');
    keys.push(newcomer);
    const first = await newcomer.get();
    assert.equal(first.status, GetStatus.ok, 'a key holding nothing takes the place of a ticket of a key holding 4');
    assert.equal(o.control.slots.preempted, 1);
    assert.equal(o.control.slots.active, 32);
    // The ticket taken over is gone: its requester's hello is refused.
    const victim = keys.slice(0, 8).find((r) => o.control.slots.heldBy(r.key) === 3)!;
    const refused = tcpRefusals.badTicket;
    const hello = net.connect(o.port, '127.0.0.1');
    hello.on('error', () => {});
    await new Promise<void>((resolve) => hello.on('connect', () => (hello.write(tcpHello(victim.conn, 1)), resolve())));
    await until('the hello of the dropped ticket refused', () => tcpRefusals.badTicket > refused, 2000);
    hello.destroy();
    // Now 3 vs 4: the victim may not take over in turn (no churn between equals).
    assert.equal((await victim.get()).status, GetStatus.busy);
  } finally {
    for (const r of keys) await r.ep.close();
    await o.close();
    await cleanup();
  }
});

test('running transfers are never taken over: with every slot sending, a newcomer gets busy', async () => {
  const { dir, cleanup } = await tempDir();
  const file = join(dir, 'a.bin');
  await randomFile(file, 64 * 1024 * 1024);
  // Sends to requesters that never acknowledge: they run until the (long, here) idle timeout.
  const o = await owner([file], { udp: { idleTimeoutMs: 60_000, progressTimeoutMs: 60_000 } });
  const keys: Requester[] = [];
  try {
    await fillEverySlot(o, keys, 'udp');
    assert.equal(o.control.slots.active, 32);
    const newcomer = await requester(o, 'a.bin');
    keys.push(newcomer);
    assert.equal((await newcomer.get()).status, GetStatus.busy);
    assert.equal(o.control.slots.preempted, 0);
  } finally {
    for (const r of keys) await r.ep.close();
    await o.close();
    await cleanup();
  }
});

test('a requester whose TCP readers stop reading loses its slots after the idle timeout (1.5 s here, 30 s by default)', async () => {
  const { dir, cleanup } = await tempDir();
  const file = join(dir, 'big.bin');
  await randomFile(file, 64 * 1024 * 1024);
  const o = await owner([file], { tcp: { idleTimeoutMs: 1500 } });
  const slow = await requester(o, 'big.bin');
  const readers: net.Socket[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const { status, sessionId } = await slow.get();
      assert.equal(status, GetStatus.ok);
      readers.push(await stalledReader(o, slow, sessionId));
    }
    const stalled = Date.now();
    assert.equal((await slow.get()).status, GetStatus.busy, 'four stalled streams hold all of its slots');
    assert.equal(await o.connections(), 4);
    // The owner's writes stop once the socket buffers are full; 1.5 s later it hangs up.
    await until('its slots freed', () => o.control.slots.heldBy(slow.key) === 0, 10_000);
    const cut = Date.now() - stalled;
    assert.ok(cut >= 1400 && cut < 5000, `the stalled readers lost their slots after ${cut} ms (idle timeout 1.5 s)`);
    assert.equal(await o.connections(), 0, 'and their connections');
    assert.equal((await slow.get()).status, GetStatus.ok, 'admitted again');
  } finally {
    for (const r of readers) r.destroy();
    await slow.ep.close();
    await o.close();
    await cleanup();
  }
});

test('a UDP requester that keeps acknowledging but never takes anything new loses its slot after the progress timeout (1.5 s here, 30 s by default)', async () => {
  const { dir, cleanup } = await tempDir();
  const file = join(dir, 'big.bin');
  await randomFile(file, 16 * 1024 * 1024);
  // The idle timeout (ACKs stop) is long here: only the lack of progress can end these sends.
  const o = await owner([file], { udp: { idleTimeoutMs: 20_000, progressTimeoutMs: 1500 } });
  const slow = await requester(o, 'big.bin');
  const aborted = new Map<number, number>();
  // A hostile receiver: every DATA is answered with an ACK of the first packet only, window 0.
  const firstSeen = new Map<number, { pn: number; sendTimeUs: number }>();
  slow.ep.on(FrameType.data, (f) => {
    const d = decodeData(f.body);
    if (!d) return;
    if (!firstSeen.has(f.id)) firstSeen.set(f.id, { pn: d.packetNumber, sendTimeUs: d.sendTimeUs });
  });
  slow.ep.on(FrameType.abort, (f) => aborted.set(f.id, Date.now()));
  const keepAcking = setInterval(() => {
    for (const [id, p] of firstSeen) {
      slow.conn.send(FrameType.ack, id, encodeAck({ echoTimeUs: p.sendTimeUs, ackDelayUs: 0, window: 0, cumulativeChunk: 0, ranges: [{ first: p.pn, last: p.pn }] }));
    }
  }, 100);
  try {
    const t0 = Date.now();
    for (let i = 0; i < 4; i++) assert.equal((await slow.get('udp')).status, GetStatus.ok);
    assert.equal((await slow.get('udp')).status, GetStatus.busy, 'four sends hold all of its slots');
    await until('every send ended', () => aborted.size === 4, 10_000);
    for (const at of aborted.values()) assert.ok(at - t0 >= 1400 && at - t0 < 6000, `a send ended after ${at - t0} ms (progress timeout 1.5 s, idle 20 s)`);
    await until('its slots freed', () => o.control.slots.heldBy(slow.key) === 0, 2000);
    assert.equal((await slow.get('udp')).status, GetStatus.ok, 'admitted again');
  } finally {
    clearInterval(keepAcking);
    await slow.ep.close();
    await o.close();
    await cleanup();
  }
});
