// Requester side of one UDP transfer: hands each new chunk to the writer (run-writer.ts, which
// also keeps the .part's resume record current), acknowledges packet numbers with ranges,
// advertises a window of free write slots (a slow disk slows the sender), and says DONE once
// every byte is written and fsynced. Memory: two bytes per chunk plus the pending writes.
import { promises as fsp, constants as fsc } from 'node:fs';
import type { Connection } from '../../net/connection';
import { FrameType } from '../../wire/frame';
import { AbortReason, encodeAbort, encodeAck, encodeDone, MAX_ACK_RANGES, type DataPacket, type PnRange } from '../../wire/transfer';
import { recordPath } from '../resume-record';
import { InOrderHash } from './in-order-hash';
import { PrefixRecorder } from './prefix-recorder';
import { RunWriter } from './run-writer';

const ACK_EVERY_PACKETS = 8;
const ACK_DELAY_MS = 2;
/**
 * Chunks received but not yet on disk, at most; beyond this, data is dropped (the window says 0
 * first). Also at most PENDING_BYTES of them, so large chunks (one host) keep memory bounded.
 */
const MAX_PENDING_CHUNKS = 4096;
const PENDING_BYTES = 16 * 1024 * 1024;
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
  /** Told each time the .part's hole-free prefix on disk grows: its bytes from the file's start. */
  onPrefixOnDisk?: (bytes: number) => void;
}

export interface ReceiveResult {
  bytes: number;
  seconds: number;
  duplicates: number;
  /** Smallest flow-control window advertised (chunks): below 4096 when the disk fell behind. */
  minWindow: number;
  /** DATA dropped because the write queue was full (the sender ignored or had not seen the window). */
  overflowDrops: number;
  /** File writes it took (contiguous chunks go in one write: run-writer.ts). */
  writes: number;
  /** Hex SHA-256 of the whole file, when it was asked for and could be computed on the way. */
  sha256?: string;
}

export class Receiver {
  readonly promise: Promise<ReceiveResult>;
  duplicates = 0;
  finished = false;
  private resolveP!: (r: ReceiveResult) => void;
  private rejectP!: (e: Error) => void;
  private readonly total: number;
  private readonly have: Uint8Array; // 1 = received (written or being written)
  private cumulative = 0; // every chunk below has been received
  private readonly writer: RunWriter;
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
    this.lastWindow = this.minWindow = this.maxPending;
    this.have = new Uint8Array(this.total);
    this.writer = new RunWriter({
      offset: o.offset,
      size: o.size,
      chunkBytes: o.chunkBytes,
      allReceived: () => this.cumulative === this.total,
      onWritten: () => this.wrote(),
      onError: (err) => this.fail(new Error(`cannot write ${this.o.partPath}: ${err.message}`), AbortReason.ioError),
    });
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
    else this.writer.start(this.fh, this.recorder); // with the runs that arrived while it opened
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
      if (this.writer.pendingChunks >= this.maxPending) {
        this.overflowDrops++;
        return true;
      }
      this.have[p.chunk] = 1;
      while (this.cumulative < this.total && this.have[this.cumulative]) this.cumulative++;
      this.writer.add(p.chunk, p.payload);
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

  /** A write landed: progress, the end, or a window to reopen. */
  private wrote(): void {
    this.reportProgress(false);
    this.o.onPrefixOnDisk?.(this.writer.prefixOnDisk());
    if (this.writer.writtenChunks === this.total) return void this.complete();
    if (this.lastWindow < this.maxPending / 4) this.sendAck(); // reopen the window
  }

  private reportProgress(force: boolean): void {
    if (!this.o.onProgress) return;
    const now = performance.now();
    if (!force && now - this.lastProgress < PROGRESS_EVERY_MS) return;
    this.lastProgress = now;
    try {
      this.o.onProgress(this.writer.writtenBytes);
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
    this.lastWindow = Math.max(0, this.maxPending - this.writer.pendingChunks);
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
      writes: this.writer.writes,
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
    this.ackTimer = this.idleTimer = this.ackImmediate = undefined;
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
    // Let writes already issued land, then cut the .part after the contiguous prefix on disk:
    // a resume starts at the file's length, so it must hold no holes.
    const closeLater = async () => {
      await this.writer.stop();
      if (!fh) return;
      const keep = this.writer.prefixOnDisk();
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
