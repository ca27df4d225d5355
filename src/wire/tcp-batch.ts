// Many small files on one TCP transfer (PROTOCOL.md 5.1): the requester's WANT lists and the
// head of each file the owner answers with. Pure codecs of record plaintexts; sealing is the
// caller's. Decoders never throw: hostile input yields `null`.
//
//   WANT  (requester -> owner)  | u16 count | count × ( sha256 (32) | u16 L | name (L) ) |   count 0: no more
//   FILE  (owner -> requester)  | u8 status | u64 size | sha256 (32) | first bytes of the file … |
import { MAX_SHARED_NAME_BYTES } from './shared-file';

/** A file of a batch: its name and the digest the requester expects (null: any). */
export interface Wanted {
  name: string;
  sha256: string | null;
}

export interface FileHead {
  /** GetStatus: 0 ok, else why this file is not sent (and no bytes follow). */
  status: number;
  size: number;
  /** Hex; '' when status is not ok. */
  sha256: string;
}

export const WANT_HEAD_BYTES = 2;
const WANT_ENTRY_FIXED_BYTES = 34;
export const FILE_HEAD_BYTES = 41;
/** Files a requester may have asked for and not yet seen answered (the owner's queue). */
export const MAX_BATCH_PENDING = 1024;
/** The largest file an owner sends in a batch: larger ones are fetched alone (and resumable). */
export const MAX_BATCH_FILE_BYTES = 1024 * 1024;
const ZERO_DIGEST = Buffer.alloc(32);

/** Bytes a WANT entry for `name` takes. */
export function wantEntryBytes(name: string): number {
  return WANT_ENTRY_FIXED_BYTES + Buffer.byteLength(name, 'utf8');
}

export function encodeWant(files: readonly Wanted[]): Buffer {
  const names = files.map((f) => Buffer.from(f.name, 'utf8'));
  const b = Buffer.alloc(WANT_HEAD_BYTES + names.reduce((n, name) => n + WANT_ENTRY_FIXED_BYTES + name.length, 0));
  b.writeUInt16BE(files.length, 0);
  let at = WANT_HEAD_BYTES;
  files.forEach((f, i) => {
    (f.sha256 ? Buffer.from(f.sha256, 'hex') : ZERO_DIGEST).copy(b, at);
    b.writeUInt16BE(names[i]!.length, at + 32);
    at += WANT_ENTRY_FIXED_BYTES + names[i]!.copy(b, at + WANT_ENTRY_FIXED_BYTES);
  });
  return b;
}

/** The files a WANT asks for ([] is "no more"), or null when it is malformed. */
export function decodeWant(b: Buffer): Wanted[] | null {
  if (b.length < WANT_HEAD_BYTES) return null;
  const count = b.readUInt16BE(0);
  const out: Wanted[] = [];
  let at = WANT_HEAD_BYTES;
  for (let i = 0; i < count; i++) {
    if (b.length - at < WANT_ENTRY_FIXED_BYTES) return null;
    const digest = b.subarray(at, at + 32);
    const length = b.readUInt16BE(at + 32);
    at += WANT_ENTRY_FIXED_BYTES;
    if (length === 0 || length > MAX_SHARED_NAME_BYTES || b.length - at < length) return null;
    const bytes = b.subarray(at, at + length);
    const name = bytes.toString('utf8');
    // Not valid UTF-8: refused rather than guessed at (as GET_REQUEST does).
    if (!Buffer.from(name, 'utf8').equals(bytes)) return null;
    out.push({ name, sha256: digest.equals(ZERO_DIGEST) ? null : digest.toString('hex') });
    at += length;
  }
  return at === b.length ? out : null;
}

export function encodeFileHead(h: FileHead): Buffer {
  const b = Buffer.alloc(FILE_HEAD_BYTES);
  b.writeUInt8(h.status, 0);
  b.writeBigUInt64BE(BigInt(h.status === 0 ? h.size : 0), 1);
  if (h.status === 0) Buffer.from(h.sha256, 'hex').copy(b, 9);
  return b;
}

/** The head at the start of `b` (a record's plaintext; the file's first bytes may follow it). */
export function decodeFileHead(b: Buffer): FileHead | null {
  if (b.length < FILE_HEAD_BYTES) return null;
  const status = b.readUInt8(0);
  const size = b.readBigUInt64BE(1);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  // A refusal carries nothing: no size, no digest, no bytes.
  if (status !== 0 && (size !== 0n || b.length !== FILE_HEAD_BYTES)) return null;
  return { status, size: Number(size), sha256: status === 0 ? b.subarray(9, FILE_HEAD_BYTES).toString('hex') : '' };
}
