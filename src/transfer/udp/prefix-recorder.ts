// Keeps the resume record of a UDP receive current (PROTOCOL.md section 7, "Resuming a UDP
// receive"): as the hole-free prefix on disk grows, the record says so every RECORD_EVERY_BYTES,
// and every SYNC_EVERY_BYTES the partial file is fsynced first so the record can also vouch for
// that much after a power cut. Only ever told a prefix whose writes have completed, so the
// record never claims a byte that is not in the file. Failures here never fail the transfer:
// a stale record claims less than is there, which costs a re-fetch, never a wrong file.
import { promises as fsp, constants as fsc } from 'node:fs';
import { dirname } from 'node:path';
import { bootId, decodeRecord, encodeRecord, RECORD_BYTES } from '../resume-record';

/** How far the record may lag the prefix on disk: what a killed requester fetches again. */
export const RECORD_EVERY_BYTES = 128 * 1024;
/** How far the fsynced prefix may lag: what a power cut costs (plus what the page cache held). */
export const SYNC_EVERY_BYTES = 32 * 1024 * 1024;

export class PrefixRecorder {
  private recorded: number; // the `written` of the last record handed to the kernel (or pending)
  private synced: number;
  private pending: Buffer | undefined;
  private writing: Promise<void> | undefined;
  private syncing: Promise<void> | undefined;
  private recordDurable = false;

  private constructor(
    private readonly fh: fsp.FileHandle,
    private readonly path: string,
    private readonly boot: string,
    offset: number,
    synced: number,
    private readonly syncPart: () => Promise<void>,
  ) {
    this.recorded = offset;
    this.synced = synced;
  }

  /**
   * The recorder of the record at `path`, or undefined when there is none: the caller of the
   * receive (PROTOCOL.md 7) creates it when it wants its .part tracked; a bare receive is not.
   */
  static async open(path: string, offset: number, syncPart: () => Promise<void>): Promise<PrefixRecorder | undefined> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, fsc.O_RDWR | fsc.O_NOFOLLOW);
    } catch {
      return undefined;
    }
    try {
      const buf = Buffer.alloc(RECORD_BYTES);
      const { bytesRead } = await fh.read(buf, 0, RECORD_BYTES, 0);
      const rec = decodeRecord(buf.subarray(0, bytesRead));
      // What was fsynced below the resume offset stays so; without a valid record, nothing is known.
      return new PrefixRecorder(fh, path, await bootId(), offset, Math.min(rec?.synced ?? 0, offset), syncPart);
    } catch {
      await fh.close().catch(() => {});
      return undefined;
    }
  }

  /** Every byte below `prefix` is written (its write() returned): record it when due. */
  advance(prefix: number): void {
    if (prefix - this.recorded >= RECORD_EVERY_BYTES) this.record(prefix);
    if (!this.syncing && prefix - this.synced >= SYNC_EVERY_BYTES) {
      this.syncing = this.syncPart().then(
        async () => {
          this.synced = prefix;
          this.record(Math.max(this.recorded, prefix));
          if (!this.recordDurable) await this.makeRecordDurable();
        },
        () => {}, // the final fsync reports a failing disk; this one only moves the watermark
      ).finally(() => (this.syncing = undefined));
    }
  }

  /**
   * The receive is over: the file's hole-free prefix is `prefix` (fsynced when `durable`). Records
   * that, waits for every write and sync of the record, and closes it.
   */
  async settle(prefix: number, durable: boolean): Promise<void> {
    await this.syncing;
    this.synced = durable ? prefix : Math.min(this.synced, prefix);
    this.record(prefix);
    while (this.writing) await this.writing;
    await this.fh.close().catch(() => {});
  }

  private record(written: number): void {
    this.recorded = written;
    this.pending = encodeRecord({ written, synced: Math.min(this.synced, written), boot: this.boot });
    this.writing ??= this.drain();
  }

  /** One record write at a time, the newest one next (older pending ones are superseded). */
  private async drain(): Promise<void> {
    while (this.pending) {
      const buf = this.pending;
      this.pending = undefined;
      await this.fh.write(buf, 0, buf.length, 0).catch(() => {});
    }
    this.writing = undefined;
  }

  /**
   * The first time `synced` moves: the record file (created empty-handed by the caller) and its
   * name in the folder go to disk too, so that after a power cut the record is there at all.
   */
  private async makeRecordDurable(): Promise<void> {
    this.recordDurable = true;
    while (this.writing) await this.writing;
    await this.fh.datasync().catch(() => {});
    const dir = await fsp.open(dirname(this.path), 'r').catch(() => undefined);
    await dir?.sync().catch(() => {}); // not every platform syncs a folder
    await dir?.close().catch(() => {});
  }
}
