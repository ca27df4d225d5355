// The owner's view of the file as chunks: new chunks come from batches of 256 read ahead (the
// next batch is read while the current one is sent), retransmissions from the current batch when
// still there, else by one positional read. Two batch buffers (about 600 KB, or 8 MiB with 16 KiB
// chunks), used in turn: a fresh buffer per batch cost about 1 ms a MiB in first-touch page faults.
// A batch's buffer is read into again once the batch after next is read, so a chunk (a view into
// it) must be used before the caller asks for a later batch; the sender seals it at once.
import { promises as fsp } from 'node:fs';

const READ_BATCH_CHUNKS = 256;

interface Batch {
  first: number;
  count: number;
  buf: Buffer;
}

export class ChunkReader {
  private fh: fsp.FileHandle | undefined;
  private batch: Batch | undefined;
  private prefetch: Promise<Batch> | undefined;
  private closed = false;
  /** The two batch buffers, made on first use, and which one the next batch reads into. */
  private readonly buffers: Buffer[] = [];
  private turn = 0;

  constructor(
    private readonly path: string,
    private readonly offset: number,
    private readonly size: number,
    private readonly chunkBytes: number,
    private readonly total: number,
  ) {}

  async open(): Promise<void> {
    this.fh = await fsp.open(this.path, 'r');
  }

  chunkLength(c: number): number {
    return Math.min(this.chunkBytes, this.size - this.offset - c * this.chunkBytes);
  }

  /** Chunk `c` for a retransmission: a view into the current batch, or a fresh read. */
  async chunk(c: number): Promise<Buffer> {
    const b = this.batch;
    if (b && c >= b.first && c < b.first + b.count) return this.slice(b, c);
    const buf = Buffer.allocUnsafe(this.chunkLength(c));
    await this.readFully(buf, this.offset + c * this.chunkBytes);
    return buf;
  }

  /** The batch holding new chunk `c` (chunks are asked for in ascending order). */
  async batchFor(c: number): Promise<{ first: number; count: number; get(c: number): Buffer }> {
    if (!this.batch || c >= this.batch.first + this.batch.count) {
      this.batch = await (this.prefetch ?? this.readBatch(c));
      this.prefetch = undefined;
      const next = this.batch.first + this.batch.count;
      if (next < this.total && !this.closed) {
        this.prefetch = this.readBatch(next);
        this.prefetch.catch(() => {}); // awaited (and its error thrown) with the next batch
      }
    }
    const b = this.batch;
    return { first: b.first, count: b.count, get: (i) => this.slice(b, i) };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.prefetch?.catch(() => {});
    await this.fh?.close().catch(() => {});
  }

  private slice(b: Batch, c: number): Buffer {
    const from = (c - b.first) * this.chunkBytes;
    return b.buf.subarray(from, from + this.chunkLength(c));
  }

  private async readBatch(first: number): Promise<Batch> {
    const count = Math.min(READ_BATCH_CHUNKS, this.total - first);
    const start = this.offset + first * this.chunkBytes;
    const buf = this.batchBuffer().subarray(0, Math.min(count * this.chunkBytes, this.size - start));
    await this.readFully(buf, start);
    return { first, count, buf };
  }

  private batchBuffer(): Buffer {
    const i = this.turn;
    this.turn ^= 1;
    this.buffers[i] ??= Buffer.allocUnsafe(Math.min(READ_BATCH_CHUNKS * this.chunkBytes, this.size - this.offset));
    return this.buffers[i]!;
  }

  private async readFully(buf: Buffer, position: number): Promise<void> {
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await this.fh!.read(buf, got, buf.length - got, position + got);
      if (bytesRead === 0) throw new Error('file is shorter than announced');
      got += bytesRead;
    }
  }
}
