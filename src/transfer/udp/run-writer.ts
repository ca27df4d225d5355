// The file side of a UDP receive (receiver.ts has the protocol side): writes each chunk at its
// offset in the .part file, contiguous chunks gathered into runs of one write each (PROTOCOL.md
// 6.5), and tells the resume record (prefix-recorder.ts) of every write and of the hole-free
// prefix on disk. Memory: one byte per chunk plus the chunks not yet written.
import type { promises as fsp } from 'node:fs';
import type { PrefixRecorder } from './prefix-recorder';

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
/** After a failure, how long the writes already issued are waited for. */
const SETTLE_MS = 2000;

export interface RunWriterOptions {
  /** Where chunk 0 goes in the file, its size, and the chunk size. */
  offset: number;
  size: number;
  chunkBytes: number;
  /** True once every chunk has been received: the last run is written at once. */
  allReceived: () => boolean;
  /** A write landed (the writer's counters say how far it got). */
  onWritten: () => void;
  onError: (err: Error) => void;
}

interface Run {
  first: number;
  bufs: Buffer[];
}

export class RunWriter {
  /** Chunks handed to add() and not yet on disk. */
  pendingChunks = 0;
  writtenChunks = 0;
  writtenBytes = 0;
  /** File writes issued. */
  writes = 0;
  private readonly total: number;
  private readonly onDisk: Uint8Array; // 1 = written
  private diskCumulative = 0; // every chunk below is written
  private readonly maxRunChunks: number;
  private run: Run | undefined; // the run still growing
  private readonly closedRuns: Run[] = []; // complete runs waiting for the file to open
  private flushScheduled = false;
  private holdTimer: NodeJS.Timeout | undefined; // writes a small run that stopped growing
  private writesInFlight = 0;
  private fh: fsp.FileHandle | undefined;
  private recorder: PrefixRecorder | undefined;
  private stopped = false;

  constructor(private readonly o: RunWriterOptions) {
    this.total = Math.ceil((o.size - o.offset) / o.chunkBytes);
    this.onDisk = new Uint8Array(this.total);
    this.maxRunChunks = Math.max(1, Math.min(MAX_RUN_CHUNKS, Math.floor(MAX_RUN_BYTES / o.chunkBytes)));
  }

  /** The file is open: writes the runs that arrived meanwhile (the growing one follows). */
  start(fh: fsp.FileHandle, recorder: PrefixRecorder | undefined): void {
    this.fh = fh;
    this.recorder = recorder;
    this.flush();
  }

  /** A chunk received for the first time: written in its run. */
  add(chunk: number, payload: Buffer): void {
    this.pendingChunks++;
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

  /** Bytes of the .part that are a hole-free prefix on disk (written, maybe not yet fsynced). */
  prefixOnDisk(): number {
    while (this.diskCumulative < this.total && this.onDisk[this.diskCumulative]) this.diskCumulative++;
    return Math.min(this.o.size, this.o.offset + this.diskCumulative * this.o.chunkBytes);
  }

  /**
   * Writes nothing more (the runs not yet written are dropped), and resolves once the writes
   * already issued have landed (or after SETTLE_MS): prefixOnDisk() then says what to keep.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.fh = undefined;
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    if (this.run) this.closedRuns.push(this.run);
    this.run = undefined;
    for (const run of this.closedRuns.splice(0)) this.pendingChunks -= run.bufs.length; // never written
    for (let waited = 0; waited < SETTLE_MS && this.writesInFlight > 0; waited += 5) await new Promise((r) => setTimeout(r, 5));
  }

  /** Writes the growing run if no write is in flight and it is large, ends the file, or waited. */
  private closeRunWhenDue(): void {
    const run = this.run;
    if (!run || this.writesInFlight > 0) return;
    const end = run.first + run.bufs.length;
    if (run.bufs.length * this.o.chunkBytes >= MIN_RUN_BYTES || end === this.total || this.o.allReceived()) {
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
    if (!this.fh || this.stopped) return;
    for (const run of this.closedRuns.splice(0)) this.writeRun(this.fh, run);
  }

  private writeRun(fh: fsp.FileHandle, run: Run): void {
    const position = this.o.offset + run.first * this.o.chunkBytes;
    // One copy into one buffer, one write call.
    const data = run.bufs.length === 1 ? run.bufs[0]! : Buffer.concat(run.bufs);
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
        if (this.stopped) return;
        this.writtenChunks += run.bufs.length;
        this.writtenBytes += bytes;
        this.recorder?.wrote(position, this.prefixOnDisk());
        this.closeRunWhenDue(); // what arrived while this write ran
        this.o.onWritten();
      },
      (err: Error) => {
        this.writesInFlight--;
        this.pendingChunks -= run.bufs.length;
        this.o.onError(err);
      },
    ).catch((err: Error) => this.o.onError(err));
  }
}
