// Many small files on one TCP stream, owner side (PROTOCOL.md 5.1): after the reply, the
// requester asks for files in WANT records; the owner answers each, in order, with a FILE head
// and the file's bytes. Files are read a few at a time ahead of the socket, each whole and
// checked against its digest before a byte of it is sent, so a file changed on disk is refused
// rather than sent under the old digest. What is read ahead has a byte budget, so a batch holds
// about as much memory as one file's stream does (README "Limits of a peer").
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type net from 'node:net';
import { normalizeIp } from '../core/addresses';
import type { Opener, Sealer } from '../crypto/transport';
import type { Connection, Remote } from '../net/connection';
import { GetStatus } from '../wire/control';
import { encodeTcpReply, MAX_RECORD_PLAINTEXT, TcpStatus } from '../wire/tcp';
import { decodeWant, encodeFileHead, FILE_HEAD_BYTES, MAX_BATCH_FILE_BYTES, MAX_BATCH_PENDING, type Wanted } from '../wire/tcp-batch';
import { joined, SealedRecords } from './sealed-records';
import { cutWhenStalled, drained, endStream, SEALED_QUEUE_BYTES, sealRecord, sealRecordParts } from './tcp-records';
import type { ServedFile } from './tcp-server';

/** Files looked up ahead of the socket at once (small files are read as many at a time). */
const READ_AHEAD = 8;
/**
 * File bytes read ahead and not yet sent, at most, per batch; one file is always let through
 * whatever its size, so a 1 MiB file never stalls. With the sealed queue (SEALED_QUEUE_BYTES)
 * that bounds a batch near one file's stream (its 1 MiB read buffer and the same queue).
 */
export const READ_AHEAD_BYTES = 2 * 1024 * 1024;

/** Batches refused for breaking the protocol (for tests and metrics). */
export const batchViolations = { badRecord: 0, badWant: 0, tooMany: 0 };

/** The most file bytes one batch held read ahead, and the most sealed bytes it queued on its socket (for tests and metrics). */
export const batchMemory = { peakReadAheadBytes: 0, peakQueuedBytes: 0 };

export interface BatchServeOptions<F extends ServedFile> {
  sealer: Sealer;
  /** Opens the requester's records (its hello was record 0). */
  opener: Opener;
  conn: Connection;
  lookup(name: string): Promise<F | undefined>;
  /** Called once per batch: `event` counts the files and bytes sent by the time `done` settles. */
  track(event: BatchEvent, done: Promise<unknown>): void;
  idleTimeoutMs: number;
}

export interface BatchEvent {
  from: Remote;
  /** '' for a batch (its files are counted, not named). */
  name: string;
  size: number;
  offset: number;
  via: 'tcp';
  files: number;
}

/** What the owner sends for one wanted file: a refusal, or the file's bytes (read whole and verified). */
type Answer<F> = { status: number; file?: undefined; data?: undefined } | { status: typeof GetStatus.ok; file: F; data: Buffer };

/**
 * Serves one batch on `socket` until the requester says "no more" and every file asked for is
 * answered (then the socket is ended), or until the requester breaks the protocol, stops reading
 * or goes quiet for idleTimeoutMs (then it is destroyed). Its outcome goes to `track`.
 */
export function serveBatch<F extends ServedFile>(socket: net.Socket, o: BatchServeOptions<F>): void {
  const from = { address: normalizeIp(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
  const release = o.conn.hold(); // its keys must outlive an idle UDP side while the batch runs
  const records = new SealedRecords(o.opener, 1); // record 0 was the hello's tag
  /** Asked for and not yet started, and started (being read) in order. */
  const waiting: Wanted[] = [];
  const reading: Promise<Answer<F>>[] = [];
  const budget = new ReadAheadBudget(READ_AHEAD_BYTES);
  let ownerNumber = 0;
  let noMore = false;
  let sending = false;

  const violation = (why: keyof typeof batchViolations): false => {
    batchViolations[why]++;
    socket.destroy();
    return false;
  };
  // One WANT record: false when it broke the protocol (the connection is closed).
  const onWant = (plaintext: Buffer): boolean => {
    const wanted = decodeWant(plaintext);
    if (wanted === null || noMore) return violation('badWant');
    if (wanted.length === 0) noMore = true;
    if (waiting.length + reading.length + wanted.length > MAX_BATCH_PENDING) return violation('tooMany');
    waiting.push(...wanted);
    return true;
  };
  const onData = (chunk: Buffer) => {
    let ok = true;
    if (records.push(chunk, (plaintext) => (ok = onWant(joined(plaintext))))) return violation('badRecord');
    if (ok) pump();
  };

  // Keeps READ_AHEAD files being looked up and read (within the budget), and sends finished ones
  // in the order they were asked for.
  const pump = () => {
    while (reading.length < READ_AHEAD && waiting.length > 0) {
      const turn = budget.turn();
      reading.push(prepare(waiting.shift()!, o.lookup, (bytes) => budget.take(turn, bytes)));
    }
    if (!sending) void send();
  };
  const send = async () => {
    sending = true;
    try {
      while (reading.length > 0 && !socket.destroyed) {
        const answer = await reading[0]!;
        reading.shift();
        if (socket.destroyed) return;
        writeAnswer(answer);
        budget.release(); // its bytes are sealed into the queue: the next file may be read
        batchMemory.peakQueuedBytes = Math.max(batchMemory.peakQueuedBytes, socket.writableLength);
        pump();
        if (socket.writableLength >= SEALED_QUEUE_BYTES) await drained(socket);
      }
      if (noMore && reading.length === 0 && waiting.length === 0 && !socket.destroyed) {
        await endStream(socket);
        finished = true;
      }
    } catch {
      socket.destroy();
    } finally {
      sending = false;
    }
  };
  const writeAnswer = (a: Answer<F>) => {
    if (!a.file || !a.data) return void socket.write(sealRecord(o.sealer, ownerNumber++, encodeFileHead({ status: a.status, size: 0, sha256: '' })));
    const head = encodeFileHead({ status: GetStatus.ok, size: a.file.size, sha256: a.file.sha256 });
    const first = Math.min(a.data.length, MAX_RECORD_PLAINTEXT - FILE_HEAD_BYTES);
    socket.cork();
    for (const part of sealRecordParts(o.sealer, ownerNumber++, Buffer.concat([head, a.data.subarray(0, first)]))) socket.write(part);
    for (let at = first; at < a.data.length; at += MAX_RECORD_PLAINTEXT) {
      for (const part of sealRecordParts(o.sealer, ownerNumber++, a.data.subarray(at, Math.min(at + MAX_RECORD_PLAINTEXT, a.data.length)))) socket.write(part);
    }
    socket.uncork();
    event.files++;
    event.size += a.file.size;
  };

  const event: BatchEvent = { from, name: '', size: 0, offset: 0, via: 'tcp', files: 0 };
  let finished = false;
  // Done when the requester said "no more" and had every answer; failed when it closed before.
  const done = new Promise<void>((resolve, reject) => socket.once('close', () => (finished ? resolve() : reject(new Error(`the connection closed after ${event.files} files`)))));
  done.then(release, release);
  o.track(event, done);
  cutWhenStalled(socket, o.idleTimeoutMs);
  // Waiting for the requester's next WANT: Node's timer counts reads and writes, so a requester
  // that is still reading what it asked for is not idle.
  socket.setTimeout(o.idleTimeoutMs, () => socket.destroy(new Error(`requester asked for nothing for ${Math.round(o.idleTimeoutMs / 1000)} s (idle timeout)`)));
  socket.write(sealRecord(o.sealer, ownerNumber++, encodeTcpReply(TcpStatus.ok, 0)));
  socket.on('data', onData);
  socket.resume();
}

/**
 * The answer for one wanted file: looked up now (re-hashed if it changed), then, once `take` grants
 * its bytes (every answer takes, a refusal 0 bytes, so that the turns pass in order), read whole
 * and verified.
 */
async function prepare<F extends ServedFile>(w: Wanted, lookup: (name: string) => Promise<F | undefined>, take: (bytes: number) => Promise<void>): Promise<Answer<F>> {
  const checked = await check(w, lookup);
  await take(checked.file?.size ?? 0);
  if (!checked.file) return { status: checked.status };
  const file = checked.file;
  const data = await readWhole(file.path, file.size).catch(() => undefined);
  // Shrank or changed since it was hashed: not these bytes under that digest.
  if (!data || createHash('sha256').update(data).digest('hex') !== file.sha256) return { status: GetStatus.changed };
  return { status: GetStatus.ok, file, data };
}

/** The file to send for one wanted file, or why not. */
async function check<F extends ServedFile>(w: Wanted, lookup: (name: string) => Promise<F | undefined>): Promise<{ status: number; file?: F }> {
  let file: F | undefined;
  try {
    file = await lookup(w.name);
  } catch {
    return { status: GetStatus.internal };
  }
  if (!file) return { status: GetStatus.notFound };
  if (w.sha256 !== null && w.sha256 !== file.sha256) return { status: GetStatus.changed };
  if (file.size > MAX_BATCH_FILE_BYTES) return { status: GetStatus.badRequest };
  return { status: GetStatus.ok, file };
}

/**
 * Bytes of files read ahead and not yet sent, granted in the order the files were asked for:
 * a file waits while those granted before it hold the budget, and is granted alone whatever its
 * size. Answers are sent in that same order, so the file at the head of the line (all before it
 * sent, nothing held) is always granted: the ones behind it cannot block it. Each turn must take
 * once, and each grant is released once its answer is written.
 */
class ReadAheadBudget {
  private held = 0;
  private turns = 0;
  private next = 0;
  private readonly asks = new Map<number, { bytes: number; grant: () => void }>();
  /** Granted and not yet released, oldest first. */
  private readonly granted: number[] = [];

  constructor(private readonly limit: number) {}

  turn(): number {
    return this.turns++;
  }

  take(turn: number, bytes: number): Promise<void> {
    return new Promise((grant) => {
      this.asks.set(turn, { bytes, grant });
      this.grantInOrder();
    });
  }

  /** The oldest grant's bytes are no longer held. */
  release(): void {
    this.held -= this.granted.shift() ?? 0;
    this.grantInOrder();
  }

  private grantInOrder(): void {
    for (let ask = this.asks.get(this.next); ask && (this.held === 0 || this.held + ask.bytes <= this.limit); ask = this.asks.get(this.next)) {
      this.asks.delete(this.next++);
      this.held += ask.bytes;
      this.granted.push(ask.bytes);
      batchMemory.peakReadAheadBytes = Math.max(batchMemory.peakReadAheadBytes, this.held);
      ask.grant();
    }
  }
}

/**
 * The first `size` bytes of the file, or undefined when it is shorter. A file that grew is not
 * told apart: its first `size` bytes are sent only if they still have the digest announced.
 */
async function readWhole(path: string, size: number): Promise<Buffer | undefined> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got);
      if (bytesRead === 0) return undefined;
      got += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}
