// TCP transfer on a session (PROTOCOL.md section 5): the requester's hello, the length-prefixed
// records both sides send after it, and the owner's reply inside its first record. Pure codecs;
// sealing and opening is the caller's (keys from the session). Decoders never throw.
//
//   hello   | "PST" | u8 version | u32 owner's connection index | u32 session ID | tag (16) |  28 bytes
//   record  | u16 length L | L bytes: ciphertext · tag |                                      L = 17 … 65535
//   reply   (plaintext of the owner's first record) | u8 status | u64 byte count |

export const TCP_MAGIC = Buffer.from('PST', 'ascii');
export const TCP_VERSION = 2;
/** Enough of a hello to know its version: magic and version byte. */
export const TCP_HELLO_PREFIX_BYTES = 4;
/** The part of the hello its tag authenticates (the associated data). */
export const TCP_HELLO_AD_BYTES = 12;
export const TCP_TAG_BYTES = 16;
export const TCP_HELLO_BYTES = TCP_HELLO_AD_BYTES + TCP_TAG_BYTES;
export const RECORD_HEADER_BYTES = 2;
/** A record carries at most 65535 bytes of ciphertext and tag, so at most 65519 of plaintext. */
export const MAX_RECORD_BYTES = 0xffff;
export const MAX_RECORD_PLAINTEXT = MAX_RECORD_BYTES - TCP_TAG_BYTES;

export interface TcpHello {
  index: number;
  sessionId: number;
  /** The bytes the tag authenticates. */
  ad: Buffer;
  tag: Buffer;
}

/** The 12 authenticated bytes of a hello; the caller appends the tag it seals over them. */
export function encodeTcpHelloHead(index: number, sessionId: number): Buffer {
  const b = Buffer.alloc(TCP_HELLO_AD_BYTES);
  TCP_MAGIC.copy(b, 0);
  b.writeUInt8(TCP_VERSION, 3);
  b.writeUInt32BE(index >>> 0, 4);
  b.writeUInt32BE(sessionId >>> 0, 8);
  return b;
}

/** The version a hello's first 4 bytes announce, or null when they are not a hello at all. */
export function tcpHelloVersion(prefix: Buffer): number | null {
  if (prefix.length < TCP_HELLO_PREFIX_BYTES || !prefix.subarray(0, 3).equals(TCP_MAGIC)) return null;
  return prefix[3]!;
}

export function decodeTcpHello(b: Buffer): TcpHello | null {
  if (b.length !== TCP_HELLO_BYTES || tcpHelloVersion(b) !== TCP_VERSION) return null;
  return { index: b.readUInt32BE(4), sessionId: b.readUInt32BE(8), ad: b.subarray(0, TCP_HELLO_AD_BYTES), tag: b.subarray(TCP_HELLO_AD_BYTES) };
}

export const TCP_REPLY_BYTES = 9;
export const TcpStatus = { ok: 0, badTicket: 1, badVersion: 2, internal: 3 } as const;

/** The reply: in version 2 the plaintext of the owner's first record; in version 1 it was sent in the clear. */
export function encodeTcpReply(status: number, count: number): Buffer {
  const b = Buffer.alloc(TCP_REPLY_BYTES);
  b.writeUInt8(status, 0);
  b.writeBigUInt64BE(BigInt(count), 1);
  return b;
}

export function decodeTcpReply(b: Buffer): { status: number; count: number } | null {
  if (b.length !== TCP_REPLY_BYTES) return null;
  const count = b.readBigUInt64BE(1);
  if (count > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { status: b.readUInt8(0), count: Number(count) };
}

/** A record's 2-byte header for `sealedLength` bytes of ciphertext and tag (also its associated data). */
export function encodeRecordHeader(sealedLength: number): Buffer {
  if (sealedLength <= TCP_TAG_BYTES || sealedLength > MAX_RECORD_BYTES) throw new RangeError(`a record holds 17-65535 sealed bytes, not ${sealedLength}`);
  const b = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  b.writeUInt16BE(sealedLength);
  return b;
}

/** A record as it came off the stream: its 2-byte header and its sealed bytes (ciphertext, then tag) in one or more pieces. */
export interface StreamRecord {
  header: Buffer;
  /** Views into the chunks the record arrived in, in order; together `header` says how many bytes. */
  sealed: Buffer[];
}

/**
 * Cuts a byte stream into records. push() returns the complete records so far; their sealed
 * bytes are views into the chunks they arrived in (a record cut by a read boundary is two or
 * more pieces), never copies: a 64 KiB read rarely ends on a record boundary, and joining the
 * pieces cost a copy and a fresh 64 KiB buffer per record. At most one partial record (64 KiB) is
 * held. A length below 17 makes the stream malformed: 'malformed', and the caller ends the
 * connection.
 */
export class RecordReader {
  /** The unfinished record's length (null until both header bytes are in), header and pieces so far. */
  private length: number | null = null;
  private header: Buffer | undefined;
  private pieces: Buffer[] = [];
  private piecesBytes = 0;
  /** A lone first byte of a header, before the second arrives. */
  private headerByte: number | undefined;
  /** Where detach() keeps an unfinished record. */
  private held: Buffer | undefined;

  push(chunk: Buffer): StreamRecord[] | 'malformed' {
    const out: StreamRecord[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.length === null) {
        if (this.headerByte === undefined && chunk.length - at >= RECORD_HEADER_BYTES) {
          this.header = chunk.subarray(at, at + RECORD_HEADER_BYTES);
          at += RECORD_HEADER_BYTES;
        } else if (this.headerByte === undefined) {
          this.headerByte = chunk[at++];
          continue;
        } else {
          this.header = Buffer.from([this.headerByte, chunk[at++]!]);
          this.headerByte = undefined;
        }
        this.length = this.header.readUInt16BE(0);
        if (this.length <= TCP_TAG_BYTES) return 'malformed';
      }
      const take = Math.min(this.length - this.piecesBytes, chunk.length - at);
      this.pieces.push(chunk.subarray(at, at + take));
      this.piecesBytes += take;
      at += take;
      if (this.piecesBytes < this.length) break;
      out.push({ header: this.header!, sealed: this.pieces });
      this.length = null;
      this.header = undefined;
      this.pieces = [];
      this.piecesBytes = 0;
    }
    return out;
  }

  /**
   * Copies the unfinished record's bytes out of the chunks they are in, into a buffer this reader
   * owns (one, reused): for a caller that reads into one buffer again and again. Call it after the
   * records push() returned are used up.
   */
  detach(): void {
    if (this.length === null) return;
    this.held ??= Buffer.allocUnsafe(RECORD_HEADER_BYTES + MAX_RECORD_BYTES);
    let at = RECORD_HEADER_BYTES;
    let pieces = this.pieces;
    // What an earlier detach() moved is in `held` already, at its place: only the new bytes are
    // copied (copying it all again per read made a record trickled one byte a read cost 2 GB).
    if (pieces[0]?.buffer === this.held.buffer) {
      at += pieces[0].length;
      pieces = pieces.slice(1);
    } else {
      this.held.writeUInt16BE(this.length, 0);
    }
    for (const p of pieces) at += p.copy(this.held, at);
    this.header = this.held.subarray(0, RECORD_HEADER_BYTES);
    this.pieces = [this.held.subarray(RECORD_HEADER_BYTES, at)];
  }

  /** Bytes of an unfinished record held. */
  get buffered(): number {
    return this.headerByte !== undefined ? 1 : this.length === null ? 0 : RECORD_HEADER_BYTES + this.piecesBytes;
  }

  /** The length field of the unfinished record, once its 2 bytes are in; null otherwise. */
  get pendingLength(): number | null {
    return this.length;
  }
}
