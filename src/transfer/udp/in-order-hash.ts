// The SHA-256 of a file received as UDP chunks, computed while they arrive (PROTOCOL.md 7), so
// that a whole-file receive need not read the file again to check it. Chunks come in any order:
// each is hashed once the ones before it are, and those ahead of a gap are held until it fills,
// up to a bound; past it the hash gives up and the caller reads the file as before.
import { createHash, type Hash } from 'node:crypto';

export class InOrderHash {
  private readonly hash: Hash = createHash('sha256');
  /** Chunks hashed: every chunk below this one. */
  private next = 0;
  private readonly held = new Map<number, Buffer>();
  private heldBytes = 0;
  private gaveUp = false;

  constructor(
    private readonly chunks: number,
    /** Bytes of chunks ahead of a gap it may hold. */
    private readonly maxHeldBytes: number,
  ) {}

  /** Chunk `index` arrived (each index once) with these bytes, which must not change afterwards. */
  add(index: number, data: Buffer): void {
    if (this.gaveUp || index < this.next) return;
    if (index > this.next) {
      this.held.set(index, data);
      this.heldBytes += data.length;
      if (this.heldBytes > this.maxHeldBytes) {
        this.gaveUp = true;
        this.held.clear();
      }
      return;
    }
    this.hash.update(data);
    this.next++;
    for (let d = this.held.get(this.next); d !== undefined; d = this.held.get(this.next)) {
      this.held.delete(this.next);
      this.heldBytes -= d.length;
      this.hash.update(d);
      this.next++;
    }
  }

  /** Hex, once every chunk was hashed; undefined when it gave up or chunks are missing. */
  digest(): string | undefined {
    return !this.gaveUp && this.next === this.chunks ? this.hash.digest('hex') : undefined;
  }
}
