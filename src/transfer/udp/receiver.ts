// Requester side of one UDP transfer: writes each chunk at its offset in the .part file
// (contiguous chunks coalesced into one write), acknowledges packet numbers with ranges,
// advertises a window of free write slots (a slow disk slows the sender), and says DONE once
// every byte is written and fsynced. Keeps the .part's resume record (if it has one) current
// as the hole-free prefix grows (prefix-recorder.ts). Memory: one byte per chunk plus the
// pending writes.
import { promises as fsp, constants as fsc } from 'node:fs';
import type { Connection } from '../../net/connection';
import { FrameType } from '../../wire/frame';
import { AbortReason, encodeAbort, encodeAck, encodeDone, MAX_ACK_RANGES, type DataPacket, type PnRange } from '../../wire/transfer';
import { recordPath } from '../resume-record';
import { InOrderHash } from './in-order-hash';
import { PrefixRecorder } from './prefix-recorder';

const ACK_EVERY_PACKETS = 8;
const ACK_DELAY_MS = 2;
/**
 * Chunks received but not yet on disk, at most; beyond this, data is dropped (the window says 0
 * first). Also at most PENDING_BYTES of them, so large chunks (one host) keep memory bounded.
 */
const MAX_PENDING_CHUNKS = 4096;
const PENDING_BYTES = 16 * 1024 * 1024;
const MAX_RUN_CHUNKS = 128; // one write at most (150 KiB at 1200-byte chunks)
/**
 * And at most this many bytes (large chunks, one host): a requester killed outright keeps only
 * the writes its resume record knew of (prefix-recorder.ts), so what it fetches again is counted
 * in writes; 2 MiB ones (128 of 16 KiB) made that several MiB on a busy host.
 */
const MAX_RUN_BYTES = 256 * 1024;
/**
 * A run smaller than this waits up to RUN_HOLD_MS for more chunks before it is written: each write
 * is a hand-off to libuv's thread pool and back (and one of the resume record), and those
 * hand-offs, not the bytes, were the receiver's largest cost (BENCHMARKS.md, "where the CPU
 * goes"). Without the wait a write took what arrived while the last one ran: about 9 chunks.
 */
const MIN_RUN_BYTES = 128 * 1024;
const RUN_HOLD_MS = 5;
const DONE_REPEATS = 3;
const DONE_SPACING_MS = 20;
const PROGRESS_EVERY_MS = 100;

export interface ReceiveOptions {
  sessionId: number;
  partPath: string;
  offset: number;
  size: number;
  chunkBytes: number;
  idleTimeoutMs: number;
  onProgress?: (bytesDone: number) => void;
  /** Hash the file as it arrives (a receive from offset 0): the result then carries its SHA-256. */
  hash?: boolean;
}

export interface ReceiveResult {
  bytes: number;
  seconds: number;
  duplicates: number;
  /** Smallest flow-control window advertised (chunks): below 4096 when the disk fell behind. */
  minWindow: number;
  /** DATA dropped because the write queue was full (the sender ignored or had not seen the window). */
  overflowDrops: number;
  /** File writes it took (contiguous chunks go in one write, up to MAX_RUN_BYTES). */
  writes: number;
  /** Hex SHA-256 of the whole file, when it was asked for and could be computed on the way. */
  sha256?: string;
}

interface Run {
  first: number;
  bufs: Buffer[];
}

export class Receiver {
  readonly promise: Promise<ReceiveResult>;
  duplicates = 0;
  finished = false;
  private resolveP!: (r: ReceiveResult) => void;
  private rejectP!: (e: Error) => void;
  private readonly total: number;
  private readonly have: Uint8Array; // 1 = received (written or being written)
  private readonly onDisk: Uint8Array; // 1 = written
  private diskCumulative = 0; // every chunk below is written
  private cumulative = 0; // every chunk below has been received
  private writtenChunks = 0;
  private writtenBytes = 0;
  private writes = 0;
  private pendingChunks = 0;
  private run: Run | undefined; // the run still growing
  private readonly maxRunChunks: number;
  private readonly closedRuns: Run[] = []; // complete runs waiting for the file to open
  private flushScheduled = false;
  private holdTimer: NodeJS.Timeout | undefined; // writes a small run that stopped growing
  private writesInFlight = 0;
  private readonly ranges: PnRange[] = []; // received packet numbers, highest first
  private largestAt = 0; // when the largest packet number arrived (performance.now)
  private largestSendTimeUs = 0;
  private sinceAck = 0;
  /** The flow-control window when nothing waits for the disk (PROTOCOL.md 6.5). */
  private readonly maxPending: number;
  private lastWindow: number;
  private minWindow: number;
  private overflowDrops = 0;
  private ackTimer: NodeJS.Timeout | undefined;
  private ackImmediate: NodeJS.Immediate | undefined;
  private lastDataAt = performance.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private lastProgress = 0;
  private fh: fsp.FileHandle | undefined;
  private recorder: PrefixRecorder | undefined; // the .part's resume record, when it has one
  private readonly hasher: InOrderHash | undefined;
  private readonly started = performance.now();
  private ended = false;

  constructor(
    private readonly conn: Connection,
    private readonly o: ReceiveOptions,
    private readonly onEnd: () => void,
  ) {
    this.total = Math.ceil((o.size - o.offset) / o.chunkBytes);
    this.maxPending = Math.min(MAX_PENDING_CHUNKS, Math.floor(PENDING_BYTES / o.chunkBytes));
    this.maxRunChunks = Math.max(1, Math.min(MAX_RUN_CHUNKS, Math.floor(MAX_RUN_BYTES / o.chunkBytes)));
    this.lastWindow = this.minWindow = this.maxPending;
    this.have = new Uint8Array(this.total);
    this.onDisk = new Uint8Array(this.total);
    // As much again as the write queue holds, of chunks that overtook a lost one.
    this.hasher = o.hash && o.offset === 0 ? new InOrderHash(this.total, PENDING_BYTES) : undefined;
    this.promise = new Promise((res, rej) => {
      this.resolveP = res;
      this.rejectP = rej;
    });
    this.promise.catch(() => {}); // the caller gets it; never an unhandled rejection here
    this.armIdle();
    void this.open();
  }

  private async open(): Promise<void> {
    try {
      // O_CREAT without O_TRUNC: a resumed .part keeps the bytes below offset.
      const fh = await fsp.open(this.o.partPath, fsc.O_RDWR | fsc.O_CREAT, 0o644);
      const recorder = await PrefixRecorder.open(recordPath(this.o.partPath), this.o.offset, () => fh.datasync());
      if (this.ended) {
        await recorder?.settle(this.o.offset, false);
        await fh.close();
        return;
      }
      this.fh = fh;
      this.recorder = recorder;
    } catch (err) {
      this.fail(new Error(`cannot open ${this.o.partPath}: ${(err as Error).message}`), AbortReason.ioError);
      return;
    }
    if (this.total === 0) void this.complete();
    else this.flush(); // runs that arrived while the file was opening (the growing one follows)
  }

  /** false: the packet does not fit this session (wrong chunk or length); the caller counts it. */
  onData(p: DataPacket): boolean {
    if (this.ended || this.finished) return true;
    if (p.chunk >= this.total) return false;
    const expected = Math.min(this.o.chunkBytes, this.o.size - this.o.offset - p.chunk * this.o.chunkBytes);
    if (p.payload.length !== expected) return false;
    if (this.have[p.chunk]) {
      this.duplicates++;
    } else {
      // Full write queue: drop it unacknowledged, the sender will send it again.
      if (this.pendingChunks >= this.maxPending) {
        this.overflowDrops++;
        return true;
      }
      this.have[p.chunk] = 1;
      this.pendingChunks++;
      while (this.cumulative < this.total && this.have[this.cumulative]) this.cumulative++;
      this.queueWrite(p.chunk, p.payload);
      this.hasher?.add(p.chunk, p.payload);
    }
    this.armIdle();
    const gap = this.recordPn(p);
    if (gap) this.sendAck();
    else if (++this.sinceAck >= ACK_EVERY_PACKETS) this.ackSoon();
    else this.scheduleAck();
    return true;
  }

  onAbort(reason: string): void {
    this.fail(new Error(`sender aborted the transfer (${reason})`));
  }

  cancel(message: string): void {
    this.fail(new Error(message), AbortReason.cancelled);
  }

  /** Adds a packet number to the ranges; true when it arrived out of order (a gap to report now). */
  private recordPn(p: DataPacket): boolean {
    const pn = p.packetNumber;
    const r = this.ranges;
    if (r.length === 0 || pn > r[0].last) {
      const gap = r.length > 0 && pn > r[0].last + 1;
      if (!gap && r.length > 0) r[0].last = pn;
      else r.unshift({ first: pn, last: pn });
      if (r.length > MAX_ACK_RANGES) r.pop();
      this.largestAt = performance.now();
      this.largestSendTimeUs = p.sendTimeUs;
      return gap;
    }
    for (let i = 0; i < r.length; i++) {
      const cur = r[i];
      if (pn > cur.last) {
        // Between r[i-1] and r[i]: extend one of them, merge, or insert.
        const above = r[i - 1];
        if (pn === cur.last + 1) {
          cur.last = pn;
          if (above.first === pn + 1) {
            cur.last = above.last;
            r.splice(i - 1, 1);
          }
        } else if (above.first === pn + 1) {
          above.first = pn;
        } else {
          r.splice(i, 0, { first: pn, last: pn });
          if (r.length > MAX_ACK_RANGES) r.pop();
        }
        return true;
      }
      if (pn >= cur.first) return false; // a duplicate datagram
    }
    // Below every range kept.
    const low = r[r.length - 1];
    if (pn === low.first - 1) low.first = pn;
    else if (r.length < MAX_ACK_RANGES) r.push({ first: pn, last: pn });
    return true;
  }

  private queueWrite(chunk: number, payload: Buffer): void {
    const run = this.run;
    if (run && chunk === run.first + run.bufs.length && run.bufs.length < this.maxRunChunks) {
      run.bufs.push(payload);
    } else {
      if (run) this.closedRuns.push(run);
      this.run = { first: chunk, bufs: [payload] };
      this.flush();
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        // While a write is in flight the run keeps growing (up to maxRunChunks): its completion
        // writes it, so a burst becomes a few large writes, not one small write per read batch.
        this.closeRunWhenDue();
      });
    }
  }

  /** Writes the growing run if no write is in flight and it is large, ends the file, or waited. */
  private closeRunWhenDue(): void {
    const run = this.run;
    if (!run || this.writesInFlight > 0) return;
    const end = run.first + run.bufs.length;
    if (run.bufs.length * this.o.chunkBytes >= MIN_RUN_BYTES || end === this.total || this.cumulative === this.total) {
      this.closeRun();
    } else {
      this.holdTimer ??= setTimeout(() => {
        this.holdTimer = undefined;
        if (this.writesInFlight === 0) this.closeRun();
      }, RUN_HOLD_MS);
    }
  }

  /** Writes the growing run now (and any closed ones). */
  private closeRun(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    if (this.run) this.closedRuns.push(this.run);
    this.run = undefined;
    this.flush();
  }

  /** Writes every closed run (once the file is open). */
  private flush(): void {
    if (!this.fh || this.ended) return;
    for (const run of this.closedRuns.splice(0)) this.writeRun(this.fh, run);
  }

  private writeRun(fh: fsp.FileHandle, run: Run): void {
    const position = this.o.offset + run.first * this.o.chunkBytes;
    // One copy into one buffer, one write call.
    const data = run.bufs.length === 1 ? run.bufs[0] : Buffer.concat(run.bufs);
    const bytes = data.length;
    this.writesInFlight++;
    this.writes++;
    this.recorder?.writingAt(position, data);
    fh.write(data, 0, bytes, position).then(
      ({ bytesWritten }) => {
        this.writesInFlight--;
        if (bytesWritten !== bytes) throw new Error('short write');
        this.pendingChunks -= run.bufs.length;
        this.onDisk.fill(1, run.first, run.first + run.bufs.length);
        if (this.ended) return;
        this.writtenChunks += run.bufs.length;
        this.writtenBytes += bytes;
        while (this.diskCumulative < this.total && this.onDisk[this.diskCumulative]) this.diskCumulative++;
        this.recorder?.wrote(position, this.prefixOnDisk());
        this.reportProgress(false);
        if (this.writtenChunks === this.total) return void this.complete();
        this.closeRunWhenDue(); // what arrived while this write ran
        if (this.lastWindow < this.maxPending / 4) this.sendAck(); // reopen the window
      },
      (err: Error) => {
        this.writesInFlight--;
        this.pendingChunks -= run.bufs.length;
        this.fail(new Error(`cannot write ${this.o.partPath}: ${err.message}`), AbortReason.ioError);
      },
    ).catch((err: Error) => this.fail(new Error(`cannot write ${this.o.partPath}: ${err.message}`), AbortReason.ioError));
  }

  /** Bytes of the .part that are a hole-free prefix on disk (written, maybe not yet fsynced). */
  private prefixOnDisk(): number {
    return Math.min(this.o.size, this.o.offset + this.diskCumulative * this.o.chunkBytes);
  }

  private reportProgress(force: boolean): void {
    if (!this.o.onProgress) return;
    const now = performance.now();
    if (!force && now - this.lastProgress < PROGRESS_EVERY_MS) return;
    this.lastProgress = now;
    try {
      this.o.onProgress(this.writtenBytes);
    } catch {
      // a progress callback's bug must not break the transfer
    }
  }

  /**
   * ACK once the datagrams already read in this event-loop turn are handled: a burst read at once
   * (up to 32 per turn) is acknowledged by one ACK, not one per 8; datagrams arriving one per
   * turn (any link slower than the CPU) are still acknowledged every 8.
   */
  private ackSoon(): void {
    if (!this.ackImmediate && !this.ended) this.ackImmediate = setImmediate(() => this.sendAck());
  }

  private scheduleAck(): void {
    if (!this.ackTimer && !this.ended) this.ackTimer = setTimeout(() => this.sendAck(), ACK_DELAY_MS);
  }

  private sendAck(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    if (this.ackImmediate) clearImmediate(this.ackImmediate);
    this.ackTimer = this.ackImmediate = undefined;
    this.sinceAck = 0;
    if (this.ended || this.ranges.length === 0) return;
    this.lastWindow = Math.max(0, this.maxPending - this.pendingChunks);
    if (this.lastWindow < this.minWindow) this.minWindow = this.lastWindow;
    const body = encodeAck({
      echoTimeUs: this.largestSendTimeUs,
      ackDelayUs: (performance.now() - this.largestAt) * 1000,
      window: this.lastWindow,
      cumulativeChunk: this.cumulative,
      ranges: this.ranges,
    });
    this.conn.send(FrameType.ack, this.o.sessionId, body);
  }

  private async complete(): Promise<void> {
    if (this.finished || this.ended) return;
    this.finished = true;
    this.sendAck();
    try {
      await this.fh!.truncate(this.o.size); // a stale, longer .part must not leave a tail
      await this.fh!.sync();
      const recorder = this.recorder;
      this.recorder = undefined;
      await recorder?.settle(this.o.size, true); // all of it is on disk: a crash now resumes at the end
      await this.fh!.close();
      this.fh = undefined;
    } catch (err) {
      this.finished = false;
      this.fail(new Error(`cannot write ${this.o.partPath}: ${(err as Error).message}`), AbortReason.ioError);
      return;
    }
    if (this.ended) return;
    this.ended = true;
    this.clearTimers();
    if (this.total > 0) {
      for (let i = 0; i < DONE_REPEATS; i++) {
        setTimeout(() => this.sendDone(), i * DONE_SPACING_MS).unref();
      }
    }
    this.reportProgress(true);
    this.onEnd();
    const sha256 = this.hasher?.digest();
    this.resolveP({
      bytes: this.o.size - this.o.offset,
      seconds: (performance.now() - this.started) / 1000,
      duplicates: this.duplicates,
      minWindow: this.minWindow,
      overflowDrops: this.overflowDrops,
      writes: this.writes,
      ...(sha256 !== undefined ? { sha256 } : {}),
    });
  }

  sendDone(): void {
    this.conn.send(FrameType.done, this.o.sessionId, encodeDone());
  }

  /** Data arrived: the idle timeout counts from now. One timer, re-armed only when it fires
   *  (clearTimeout and setTimeout for every datagram showed in profiles beside the CRC check). */
  private armIdle(): void {
    this.lastDataAt = performance.now();
    if (this.idleTimer) return;
    const check = () => {
      const quiet = performance.now() - this.lastDataAt;
      if (quiet < this.o.idleTimeoutMs) {
        this.idleTimer = setTimeout(check, this.o.idleTimeoutMs - quiet);
        return;
      }
      this.idleTimer = undefined;
      const secs = this.o.idleTimeoutMs / 1000;
      this.fail(new Error(`no data from peer for ${secs} s (idle timeout)`), AbortReason.timeout);
    };
    this.idleTimer = setTimeout(check, this.o.idleTimeoutMs);
  }

  private clearTimers(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    if (this.ackImmediate) clearImmediate(this.ackImmediate);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.ackTimer = this.idleTimer = this.ackImmediate = this.holdTimer = undefined;
  }

  private fail(err: Error, abortReason?: number): void {
    if (this.ended) return;
    this.ended = true;
    this.clearTimers();
    if (abortReason !== undefined) {
      this.conn.send(FrameType.abort, this.o.sessionId, encodeAbort(abortReason));
    }
    const fh = this.fh;
    this.fh = undefined;
    if (this.run) this.closedRuns.push(this.run);
    for (const run of this.closedRuns.splice(0)) this.pendingChunks -= run.bufs.length; // never written
    this.run = undefined;
    // Let writes already issued land, then cut the .part after the contiguous prefix on disk:
    // a resume starts at the file's length, so it must hold no holes.
    const closeLater = async () => {
      for (let i = 0; i < 400 && this.pendingChunks > 0; i++) await new Promise((r) => setTimeout(r, 5));
      if (!fh) return;
      while (this.diskCumulative < this.total && this.onDisk[this.diskCumulative]) this.diskCumulative++;
      const keep = this.prefixOnDisk();
      await fh.truncate(keep).catch(() => {});
      // Made durable, the cut .part needs no record: its length holds across a power cut too.
      const durable = this.recorder ? await fh.datasync().then(() => true, () => false) : false;
      await this.recorder?.settle(keep, durable);
      await fh.close().catch(() => {});
    };
    void closeLater().finally(() => {
      this.onEnd();
      this.rejectP(err);
    });
  }
}
