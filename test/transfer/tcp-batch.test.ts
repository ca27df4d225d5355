// A batch on one TCP stream (PROTOCOL.md 5.1) against a real owner in this process: the
// requester's side answers every file in order (bytes, not found, changed); a requester that
// breaks the protocol (too many files asked, a WANT after "no more", a damaged record) has its
// connection closed; a file changed on disk behind the owner's back is refused, never sent; a
// requester that stops reading leaves the owner holding at most its read-ahead budget.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, stat, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { SecureConnection } from '../../src/net/connection';
import type { Endpoint } from '../../src/net/endpoint';
import { Opener, Sealer } from '../../src/crypto/transport';
import { batchMemory, batchViolations, READ_AHEAD_BYTES } from '../../src/transfer/tcp-batch-server';
import { fetchBatchOverTcp, type BatchAnswer, type BatchFile } from '../../src/transfer/tcp-batch-client';
import { SEALED_QUEUE_BYTES, sealRecord } from '../../src/transfer/tcp-records';
import { FrameType } from '../../src/wire/frame';
import { decodeGetResponse, encodeGetRequest, GetStatus } from '../../src/wire/control';
import { decodeFileHead, encodeWant, FILE_HEAD_BYTES, MAX_BATCH_FILE_BYTES, MAX_BATCH_PENDING } from '../../src/wire/tcp-batch';
import { decodeTcpReply, RecordReader } from '../../src/wire/tcp';
import { tempDir } from '../support/cli';
import { connect, requesterEndpoint, tcpHello, tcpReplyOf } from '../support/secure';
import { owner } from '../control/support';
import type { FetchEvent } from '../../src/control/server';

let dir: string;
let cleanup: () => Promise<void>;
let o: Awaited<ReturnType<typeof owner>>;
let ep: Endpoint;
let conn: SecureConnection;
const files = new Map<string, Buffer>();
const events: FetchEvent[] = [];
let sessionId = 0;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  ({ dir, cleanup } = await tempDir('p2pshare-batch-'));
  const share = join(dir, 'share');
  await mkdir(join(share, 's'), { recursive: true });
  // Sizes around the record boundaries: the first record holds a 41-byte head and 65,478 bytes.
  for (const [i, size] of [0, 1, 4096, 65_478, 65_479, 65_519, 200_000, 1024 * 1024].entries()) {
    const data = randomBytes(size);
    files.set(`s/f${i}.bin`, data);
    await writeFile(join(share, 's', `f${i}.bin`), data);
  }
  files.set('s/big.bin', randomBytes(1024 * 1024 + 1));
  await writeFile(join(share, 's', 'big.bin'), files.get('s/big.bin')!);
  o = await owner([join(share, 's')], { onFetch: (e) => events.push(e) });
  ep = await requesterEndpoint();
  conn = await connect(ep, o.side);
});

after(async () => {
  await ep?.close();
  await o?.close();
  await cleanup?.();
});

/** A batch GET on `conn`: its session ID, once the owner answered ok. */
async function batchTicket(): Promise<number> {
  const id = ++sessionId;
  const body = await new Promise<Buffer>((resolve) => {
    ep.on(FrameType.getResponse, (f) => {
      ep.off(FrameType.getResponse);
      resolve(Buffer.from(f.body));
    });
    conn.send(FrameType.getRequest, id, encodeGetRequest({ transport: 'batch', sessionId: id, offset: 0, expectedSha256: null, maxPayload: 0, name: '' }));
  });
  assert.deepEqual(decodeGetResponse(body), { status: GetStatus.ok, size: 0, sha256: '0'.repeat(64) });
  return id;
}

test('every file answered in the order asked: bytes across record boundaries, not found, too large, a stale digest refused', async () => {
  const names = ['s/f0.bin', 's/f1.bin', 's/f2.bin', 's/f3.bin', 's/f4.bin', 's/f5.bin', 's/f6.bin', 's/f7.bin'];
  const asked: BatchFile[] = [
    ...names.map((name) => ({ name, size: files.get(name)!.length, sha256: sha(files.get(name)!) })),
    { name: 's/missing.bin', size: 1, sha256: '' },
    { name: 's/big.bin', size: files.get('s/big.bin')!.length, sha256: sha(files.get('s/big.bin')!) },
    { name: 's/f2.bin', size: 4096, sha256: 'ab'.repeat(32) },
    { name: 's/f2.bin', size: 4096, sha256: '' },
  ];
  const answers: BatchAnswer[] = [];
  const before = events.length;
  await fetchBatchOverTcp({ conn, sessionId: await batchTicket(), files: asked, onAnswer: async (i, a) => void (answers[i] = a) });
  assert.equal(answers.length, asked.length);
  names.forEach((name, i) => {
    const a = answers[i]!;
    assert.equal(a.kind, 'file', name);
    assert.ok(a.kind === 'file' && Buffer.concat(a.data).equals(files.get(name)!), `${name} byte-exact`);
  });
  assert.deepEqual(answers[8], { kind: 'refused', status: GetStatus.notFound });
  assert.deepEqual(answers[9], { kind: 'refused', status: GetStatus.badRequest }, 'over 1 MiB: fetched alone');
  assert.deepEqual(answers[10], { kind: 'refused', status: GetStatus.changed }, 'not the version asked for');
  assert.ok(answers[11]!.kind === 'file' && answers[11]!.sha256 === sha(files.get('s/f2.bin')!), 'no digest given: the current one');
  await waitFor(() => events.length > before);
  const e = events.at(-1)!;
  assert.equal(e.ok, true);
  assert.equal(e.files, 9, 'one event for the batch: the files sent');
  assert.equal(e.size, names.reduce((n, name) => n + files.get(name)!.length, 0) + 4096);
});

test('a file changed on disk with its size and time kept is refused (changed), never sent under the old digest', async () => {
  const path = join(dir, 'share', 's', 'f2.bin');
  const before = await stat(path);
  const old = files.get('s/f2.bin')!;
  const altered = Buffer.from(old);
  altered[100] ^= 0xff;
  await writeFile(path, altered);
  await utimes(path, before.atime, before.mtime);
  try {
    const answers: BatchAnswer[] = [];
    await fetchBatchOverTcp({ conn, sessionId: await batchTicket(), files: [{ name: 's/f2.bin', size: old.length, sha256: sha(old) }], onAnswer: async (i, a) => void (answers[i] = a) });
    assert.deepEqual(answers, [{ kind: 'refused', status: GetStatus.changed }]);
  } finally {
    await writeFile(path, old);
    await utimes(path, before.atime, before.mtime);
  }
});

/** A raw batch stream, its hello sent and the owner's reply in: `got` collects all it receives. */
async function openBatch(): Promise<{ id: number; socket: net.Socket; got: Buffer[]; sealer: Sealer }> {
  const id = await batchTicket();
  const socket = net.connect(o.port, '127.0.0.1');
  const got: Buffer[] = [];
  socket.on('data', (d) => got.push(d));
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(tcpHello(conn, id));
  await waitFor(() => got.length > 0);
  assert.deepEqual(tcpReplyOf(conn, id, Buffer.concat(got)), { status: 0, count: 0, records: 1 });
  return { id, socket, got, sealer: new Sealer(conn.tcpKeys(id).requesterToOwner) };
}

/** A raw batch stream: hello, the reply read, then what the test sends; resolves when the owner closes it. */
async function rawBatch(send: (sealer: Sealer) => Buffer[]): Promise<{ closedBy: 'owner'; bytes: number }> {
  const { socket, got, sealer } = await openBatch();
  for (const b of send(sealer)) socket.write(b);
  await Promise.race([once(socket, 'close'), new Promise((_, reject) => setTimeout(() => reject(new Error('the owner kept the connection')), 10_000))]);
  return { closedBy: 'owner', bytes: Buffer.concat(got).length };
}

test(`more than ${MAX_BATCH_PENDING} files asked and not answered: the owner closes the connection`, async () => {
  const before = batchViolations.tooMany;
  // In one record, so that none of them can be answered before the owner counts them.
  const want = encodeWant(Array.from({ length: MAX_BATCH_PENDING + 1 }, (_, i) => ({ name: `s/none-${i}`, sha256: null })));
  await rawBatch((s) => [sealRecord(s, 1, want)]);
  assert.equal(batchViolations.tooMany, before + 1);
});

test('a WANT after "no more", and a record that does not authenticate: each closes the connection', async () => {
  const badWant = batchViolations.badWant;
  await rawBatch((s) => [sealRecord(s, 1, encodeWant([])), sealRecord(s, 2, encodeWant([{ name: 's/f1.bin', sha256: null }]))]);
  assert.equal(batchViolations.badWant, badWant + 1);
  const badRecord = batchViolations.badRecord;
  await rawBatch((s) => {
    const r = sealRecord(s, 1, encodeWant([{ name: 's/f1.bin', sha256: null }]));
    r[r.length - 1] ^= 1; // the tag
    return [r];
  });
  assert.equal(batchViolations.badRecord, badRecord + 1);
  const reused = batchViolations.badRecord;
  await rawBatch((s) => [sealRecord(s, 0, encodeWant([]))]); // record number 0 is the hello's
  assert.equal(batchViolations.badRecord, reused + 1);
});

test('a batch is one slot: a second batch GET at the requester cap is busy, and the slot is free again once the stream ends', async () => {
  const capped = await owner([join(dir, 'share', 's')], { maxPerRequester: 1 });
  const ep2 = await requesterEndpoint();
  try {
    const c = await connect(ep2, capped.side);
    const ask = (id: number) =>
      new Promise<number>((resolve) => {
        ep2.on(FrameType.getResponse, (f) => {
          ep2.off(FrameType.getResponse);
          resolve(decodeGetResponse(Buffer.from(f.body))!.status);
        });
        c.send(FrameType.getRequest, id, encodeGetRequest({ transport: 'batch', sessionId: id, offset: 0, expectedSha256: null, maxPayload: 0, name: '' }));
      });
    assert.equal(await ask(1), GetStatus.ok);
    assert.equal(await ask(2), GetStatus.busy, 'the unredeemed ticket holds the one slot');
    await fetchBatchOverTcp({ conn: c, sessionId: 1, files: [{ name: 's/f1.bin', size: 1, sha256: '' }], onAnswer: async () => {} });
    await waitFor(() => capped.control.slots.active === 0);
    assert.equal(await ask(3), GetStatus.ok);
  } finally {
    await ep2.close();
    await capped.close();
  }
});

test(`a requester that asks for many 1 MiB files and does not read: the owner holds at most ${READ_AHEAD_BYTES / 1024 / 1024} MiB read ahead, and every file arrives byte-exact once it reads`, async () => {
  const name = 's/f7.bin';
  const data = files.get(name)!;
  assert.equal(data.length, MAX_BATCH_FILE_BYTES);
  const count = 32; // far more than the socket buffers, the sealed queue and the read-ahead hold
  batchMemory.peakReadAheadBytes = 0;
  batchMemory.peakQueuedBytes = 0;
  const { id, socket, got, sealer } = await openBatch();
  socket.pause(); // takes no more than Node's small read buffer until resumed
  socket.write(Buffer.concat([sealRecord(sealer, 1, encodeWant(Array.from({ length: count }, () => ({ name, sha256: sha(data) })))), sealRecord(sealer, 2, encodeWant([]))]));
  try {
    // The fault took effect: the owner's sealed queue filled (the requester took nothing), and it
    // then read ahead as far as it may; given time, an unbounded owner would read on.
    await waitFor(() => batchMemory.peakQueuedBytes >= SEALED_QUEUE_BYTES && batchMemory.peakReadAheadBytes >= READ_AHEAD_BYTES);
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(batchMemory.peakReadAheadBytes <= READ_AHEAD_BYTES, `the owner held ${batchMemory.peakReadAheadBytes} bytes read ahead`);
    // One 1 MiB file's records (17 of them: 18 bytes each on top) may go past the queue's mark.
    assert.ok(batchMemory.peakQueuedBytes <= SEALED_QUEUE_BYTES + MAX_BATCH_FILE_BYTES + FILE_HEAD_BYTES + 17 * 18, `the owner queued ${batchMemory.peakQueuedBytes} bytes`);
  } finally {
    socket.resume();
  }
  await Promise.race([once(socket, 'end'), new Promise((_, reject) => setTimeout(() => reject(new Error('the batch did not end')), 20_000))]);
  socket.destroy();
  const records = new RecordReader().push(Buffer.concat(got));
  assert.ok(records !== 'malformed');
  const opener = new Opener(conn.tcpKeys(id).ownerToRequester);
  const plain = records.map((r, i) => opener.open(i, r.header, Buffer.concat(r.sealed)));
  assert.ok(plain.every((p) => p !== null), 'every record authenticates');
  assert.deepEqual(decodeTcpReply(plain[0]!), { status: 0, count: 0 });
  let at = 1;
  for (let f = 0; f < count; f++) {
    const head = decodeFileHead(plain[at]!);
    assert.deepEqual(head, { status: GetStatus.ok, size: data.length, sha256: sha(data) }, `file ${f}`);
    const pieces = [plain[at++]!.subarray(FILE_HEAD_BYTES)];
    for (let n = pieces[0]!.length; n < data.length; n += plain[at++]!.length) pieces.push(plain[at]!);
    assert.ok(Buffer.concat(pieces).equals(data), `file ${f} byte-exact`);
  }
  assert.equal(at, plain.length, 'nothing after the last file');
});

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
