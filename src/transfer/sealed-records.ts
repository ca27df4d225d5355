// The records a TCP transfer receives (PROTOCOL.md 5 and 5.1), opened the same way on every
// stream: cut from the bytes as they come, each opened under the next record number, the first
// damaged one ending the stream before anything of it is used.
import type { Opener } from '../crypto/transport';
import { RecordReader } from '../wire/tcp';

/** Why records were refused: a length no sender writes (below 17), or a record that does not authenticate. */
export type RecordFault = 'badLength' | 'badAuth';

export class SealedRecords {
  private readonly reader = new RecordReader();

  /** `next` is the number of the first record to come (its nonce). */
  constructor(
    private readonly opener: Opener,
    private next: number,
  ) {}

  /**
   * Cuts `chunk` into records and hands each one it completes, opened, to `use` (the plaintext in
   * pieces), in order, for as long as `use` returns true. Returns 'badLength' when a length is
   * below 17 (no record of the chunk is used), 'badAuth' when a record does not authenticate (the
   * ones before it were used), undefined otherwise. Once the chunk's records are used, an
   * unfinished record is copied out of it, so the caller may read into the same buffer again.
   */
  push(chunk: Buffer, use: (plaintext: Buffer[]) => boolean): RecordFault | undefined {
    const got = this.reader.push(chunk);
    if (got === 'malformed') return 'badLength';
    for (const r of got) {
      const plaintext = this.opener.openPieces(this.next++, r.header, r.sealed);
      if (!plaintext) return 'badAuth';
      if (!use(plaintext)) return undefined;
    }
    this.reader.detach();
    return undefined;
  }

  /** Bytes of an unfinished record held (0 when the stream ended on a record boundary). */
  get buffered(): number {
    return this.reader.buffered;
  }

  /** The length field of the unfinished record, once its 2 bytes are in; null otherwise. */
  get pendingLength(): number | null {
    return this.reader.pendingLength;
  }
}

/** A plaintext's pieces as one buffer (without a copy when it is one piece). */
export function joined(pieces: Buffer[]): Buffer {
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
}
