// Keeps the resume record of a UDP receive current (PROTOCOL.md section 7, "Resuming a UDP
// receive"): the writes handed to the file system (so that a requester killed before it heard of
// their completion need not fetch them again), and, as the hole-free prefix on disk grows, that
// prefix every RECORD_EVERY_BYTES; every SYNC_EVERY_BYTES the partial file is fsynced first so
// the record can also vouch for that much after a power cut. Only ever told a prefix whose writes
// have completed, so the record never claims a byte that is not in the file. One record write at
// a time, carrying the state of the moment it starts. Failures here never fail the transfer: a
// stale record claims less than is there, which costs a re-fetch, never a wrong file.
import { promises as fsp, constants as fsc } from 'node:fs';
import { dirname } from 'node:path';
import { bootId, decodeRecord, encodeRecord, MAX_RECORD_WRITES, pendingWrite, RECORD_BYTES, type PendingWrite } from '../resume-record';

/** How far the recorded prefix may lag the one on disk (besides the writes the record lists). */
export const RECORD_EVERY_BYTES = 128 * 1024;
/** How far the fsynced prefix may lag: what a power cut costs (plus what the page cache held). */
export const SYNC_EVERY_BYTES = 32 * 1024 * 1024;

export class PrefixRecorder {
  private prefix: number; // the hole-free prefix on disk, as last told
  private recorded: number; // the prefix in the last record started
  private synced: number;
  private readonly writes = new Map<number, PendingWrite>(); // by position
  private dirty = false;
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
    this.prefix = this.recorded = offset;
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

  /** `data` is about to be written at `position`: listed in the next record. */
  writingAt(position: number, data: Buffer): void {
    const w = pendingWrite(position, data);
    if (!w) return; // ends in zeros: could not be told from a hole, so never claimed
    this.writes.set(position, w);
    this.record();
  }

  /**
   * The write at `position` is done, and every byte below `prefix` is written (its write()
   * returned): recorded when due.
   */
  wrote(position: number, prefix: number): void {
    this.writes.delete(position);
    this.prefix = prefix;
    if (prefix - this.recorded >= RECORD_EVERY_BYTES) this.record();
    if (!this.syncing && prefix - this.synced >= SYNC_EVERY_BYTES) {
      this.syncing = this.syncPart().then(
        async () => {
          this.synced = Math.max(this.synced, prefix);
          this.record();
          if (!this.recordDurable) await this.makeRecordDurable();
        },
        () => {}, // the final fsync reports a failing disk; this one only moves the watermark
      ).finally(() => (this.syncing = undefined));
    }
  }

  /**
   * The receive is over: the file's hole-free prefix is `prefix` (fsynced when `durable`), nothing
   * else counts. Records that, waits for every write and sync of the record, and closes it.
   */
  async settle(prefix: number, durable: boolean): Promise<void> {
    await this.syncing;
    this.writes.clear();
    this.prefix = prefix;
    this.synced = durable ? prefix : Math.min(this.synced, prefix);
    this.record();
    while (this.writing) await this.writing;
    await this.fh.close().catch(() => {});
  }

  private record(): void {
    this.dirty = true;
    this.writing ??= this.drain();
  }

  /** One record write at a time, each with the state of the moment it starts. */
  private async drain(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      this.recorded = this.prefix;
      const writes = [...this.writes.values()]
        .filter((w) => w.position >= this.prefix)
        .sort((a, b) => a.position - b.position)
        .slice(0, MAX_RECORD_WRITES);
      const buf = encodeRecord({ written: this.prefix, synced: Math.min(this.synced, this.prefix), boot: this.boot, writes });
      await this.fh.write(buf, 0, buf.length, 0).catch(() => {});
    }
    this.writing = undefined;
  }

  /**
   * The first time `synced` moves: the record file (created by the caller) and its name in the
   * folder go to disk too, so that after a power cut the record is there at all.
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
