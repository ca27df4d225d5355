// Control messages (PROTOCOL.md section 4): pure encoders and decoders of frame bodies.
// Decoders never throw: hostile input yields `null`.
import { MAX_SHARED_NAME_BYTES, type FileKind } from './shared-file';

export const Transport = { tcp: 1, udp: 2, batch: 3 } as const;
export type TransportName = 'tcp' | 'udp';
/** How a GET asks for its bytes: one file over TCP or UDP, or many small files over one TCP stream (PROTOCOL.md 5.1). */
export type GetTransport = TransportName | 'batch';

export const GetStatus = {
  ok: 0,
  notFound: 1,
  busy: 2,
  badRequest: 3,
  changed: 4,
  badOffset: 5,
  internal: 6,
  /** The owner serves only keys on its allow list (PROTOCOL.md 4.3). */
  forbidden: 7,
} as const;
export type GetStatus = (typeof GetStatus)[keyof typeof GetStatus];

export const LIST_END = 0xffffffff;
const KINDS: FileKind[] = ['other', 'text', 'image'];
const ZERO_DIGEST = Buffer.alloc(32);
/** LIST_RESPONSE's fixed part before the entries. */
const LIST_HEAD_BYTES = 11;
/** LIST_REQUEST's fixed part before the prefix (a 4-byte body is the start index alone). */
const LIST_REQUEST_HEAD_BYTES = 7;
/** LIST_REQUEST flag: only the entry named exactly `prefix`, hashed first if it can be (PROTOCOL.md 4.2). */
const LIST_EXACT = 0x01;

export interface ListEntry {
  name: string;
  size: number;
  /** Hex; '' while the owner has not hashed the file yet (sent as 32 zero bytes, PROTOCOL.md 4.2). */
  sha256: string;
  kind: FileKind;
  width: number;
  height: number;
}

export interface ListRequest {
  /** The first entry wanted, counted within the entries the prefix selects. */
  start: number;
  /** Only names starting with this ('' for all); with `exact`, the one name wanted. */
  prefix: string;
  exact: boolean;
}

/** Where LIST pages read entries from: an array, or a view of a range of one. */
export interface ListSource {
  readonly length: number;
  at(i: number): ListEntry | undefined;
}

export interface ListResponse {
  status: number;
  total: number;
  nextIndex: number; // LIST_END when this is the last page
  entries: ListEntry[];
}

export interface GetRequest {
  /** 'batch': no name, offset or digest (all empty); the files are asked for on the TCP stream. */
  transport: GetTransport;
  sessionId: number;
  offset: number;
  expectedSha256: string | null;
  maxPayload: number;
  name: string;
}

export interface GetResponse {
  status: GetStatus;
  size: number;
  sha256: string;
}

// --- LIST ---

/** LIST_RESPONSE's status byte. */
export const ListStatus = { ok: 0, forbidden: 1 } as const;

/** A LIST_RESPONSE that lists nothing and says why (no entries, next = LIST_END). */
export function encodeListRefusal(status: number): Buffer {
  const head = Buffer.alloc(LIST_HEAD_BYTES);
  head.writeUInt8(status, 0);
  head.writeUInt32BE(LIST_END, 5);
  return head;
}

/** The 4-byte form when there is no prefix and no flag (what every owner understands). */
export function encodeListRequest(start: number, o: { prefix?: string; exact?: boolean } = {}): Buffer {
  const prefix = Buffer.from(o.prefix ?? '', 'utf8');
  if (prefix.length === 0 && !o.exact) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(start >>> 0);
    return b;
  }
  const b = Buffer.alloc(LIST_REQUEST_HEAD_BYTES + prefix.length);
  b.writeUInt32BE(start >>> 0, 0);
  b.writeUInt8(o.exact ? LIST_EXACT : 0, 4);
  b.writeUInt16BE(prefix.length, 5);
  prefix.copy(b, LIST_REQUEST_HEAD_BYTES);
  return b;
}

export function decodeListRequest(body: Buffer): ListRequest | null {
  if (body.length === 4) return { start: body.readUInt32BE(0), prefix: '', exact: false };
  if (body.length < LIST_REQUEST_HEAD_BYTES) return null;
  const flags = body.readUInt8(4);
  if ((flags & ~LIST_EXACT) !== 0) return null; // a flag this version does not know: refuse, never guess
  const len = body.readUInt16BE(5);
  if (len > MAX_SHARED_NAME_BYTES || LIST_REQUEST_HEAD_BYTES + len !== body.length) return null;
  const exact = (flags & LIST_EXACT) !== 0;
  if (exact && len === 0) return null;
  const bytes = body.subarray(LIST_REQUEST_HEAD_BYTES);
  const prefix = bytes.toString('utf8');
  if (!Buffer.from(prefix, 'utf8').equals(bytes)) return null; // not valid UTF-8 (PROTOCOL.md 4.2)
  return { start: body.readUInt32BE(0), prefix, exact };
}

function entryBytes(e: ListEntry): number {
  return 1 + 8 + 32 + 2 + 2 + 2 + Buffer.byteLength(e.name);
}

/**
 * Packs as many entries from `start` as fit a body of `maxBody` bytes (one datagram); reads only
 * those (and the length), so a page costs the same however long the list.
 */
export function encodeListResponse(all: ListSource, start: number, maxBody: number): Buffer {
  const parts: Buffer[] = [];
  let used = 0;
  let i = start;
  for (; i < all.length; i++) {
    const e = all.at(i)!;
    const n = entryBytes(e);
    if (LIST_HEAD_BYTES + used + n > maxBody) break;
    const b = Buffer.alloc(n);
    b.writeUInt8(Math.max(0, KINDS.indexOf(e.kind)), 0);
    b.writeBigUInt64BE(BigInt(e.size), 1);
    if (e.sha256) Buffer.from(e.sha256, 'hex').copy(b, 9); // none yet: 32 zero bytes
    b.writeUInt16BE(Math.min(e.width, 0xffff), 41);
    b.writeUInt16BE(Math.min(e.height, 0xffff), 43);
    const nameLen = n - 47;
    b.writeUInt16BE(nameLen, 45);
    b.write(e.name, 47, 'utf8');
    parts.push(b);
    used += n;
  }
  const head = Buffer.alloc(LIST_HEAD_BYTES);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(all.length, 1);
  head.writeUInt32BE(i >= all.length ? LIST_END : i, 5);
  head.writeUInt16BE(parts.length, 9);
  return Buffer.concat([head, ...parts]);
}

export function decodeListResponse(body: Buffer): ListResponse | null {
  if (body.length < LIST_HEAD_BYTES) return null;
  const status = body.readUInt8(0);
  const total = body.readUInt32BE(1);
  const nextIndex = body.readUInt32BE(5);
  const count = body.readUInt16BE(9);
  const entries: ListEntry[] = [];
  let off = LIST_HEAD_BYTES;
  for (let k = 0; k < count; k++) {
    if (off + 47 > body.length) return null;
    const kind = KINDS[body.readUInt8(off)];
    if (!kind) return null;
    const size = body.readBigUInt64BE(off + 1);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) return null;
    const digest = body.subarray(off + 9, off + 41);
    const sha256 = digest.equals(ZERO_DIGEST) ? '' : digest.toString('hex');
    const width = body.readUInt16BE(off + 41);
    const height = body.readUInt16BE(off + 43);
    const nameLen = body.readUInt16BE(off + 45);
    if (nameLen === 0 || nameLen > MAX_SHARED_NAME_BYTES || off + 47 + nameLen > body.length) return null;
    const nameBytes = body.subarray(off + 47, off + 47 + nameLen);
    const name = nameBytes.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(nameBytes)) return null; // not valid UTF-8 (PROTOCOL.md 4.2)
    entries.push({ name, size: Number(size), sha256, kind, width, height });
    off += 47 + nameLen;
  }
  if (off !== body.length) return null;
  return { status, total, nextIndex, entries };
}

// --- GET ---

export function encodeGetRequest(r: GetRequest): Buffer {
  const name = Buffer.from(r.name, 'utf8');
  const b = Buffer.alloc(1 + 4 + 8 + 32 + 2 + 2 + name.length);
  b.writeUInt8(Transport[r.transport], 0);
  b.writeUInt32BE(r.sessionId >>> 0, 1);
  b.writeBigUInt64BE(BigInt(r.offset), 5);
  (r.expectedSha256 ? Buffer.from(r.expectedSha256, 'hex') : ZERO_DIGEST).copy(b, 13);
  b.writeUInt16BE(r.maxPayload, 45);
  b.writeUInt16BE(name.length, 47);
  name.copy(b, 49);
  return b;
}

export function decodeGetRequest(body: Buffer): GetRequest | null {
  if (body.length < 49) return null;
  const t = body.readUInt8(0);
  const transport: GetTransport | null = t === Transport.tcp ? 'tcp' : t === Transport.udp ? 'udp' : t === Transport.batch ? 'batch' : null;
  if (!transport) return null;
  const sessionId = body.readUInt32BE(1);
  if (sessionId === 0) return null;
  const offset = body.readBigUInt64BE(5);
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  const digest = body.subarray(13, 45);
  const maxPayload = body.readUInt16BE(45);
  const nameLen = body.readUInt16BE(47);
  if (nameLen > MAX_SHARED_NAME_BYTES || 49 + nameLen !== body.length) return null;
  // A batch names nothing (its files come on the TCP stream); a single file always names one.
  if (transport === 'batch' ? nameLen !== 0 || offset !== 0n || maxPayload !== 0 || !digest.equals(ZERO_DIGEST) : nameLen === 0) return null;
  const nameBytes = body.subarray(49);
  const name = nameBytes.toString('utf8');
  // Refuse names that are not valid UTF-8 rather than guess what was meant.
  if (!Buffer.from(name, 'utf8').equals(nameBytes)) return null;
  return {
    transport,
    sessionId,
    offset: Number(offset),
    expectedSha256: digest.equals(ZERO_DIGEST) ? null : digest.toString('hex'),
    maxPayload,
    name,
  };
}

export function encodeGetResponse(r: GetResponse): Buffer {
  if (r.status !== GetStatus.ok) return Buffer.from([r.status]);
  const b = Buffer.alloc(41);
  b.writeUInt8(r.status, 0);
  b.writeBigUInt64BE(BigInt(r.size), 1);
  Buffer.from(r.sha256, 'hex').copy(b, 9);
  return b;
}

export function decodeGetResponse(body: Buffer): GetResponse | null {
  if (body.length < 1) return null;
  const status = body.readUInt8(0) as GetStatus;
  if (status > GetStatus.forbidden) return null;
  if (status !== GetStatus.ok) return body.length === 1 ? { status, size: 0, sha256: '' } : null;
  if (body.length !== 41) return null;
  const size = body.readBigUInt64BE(1);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { status, size: Number(size), sha256: body.subarray(9, 41).toString('hex') };
}
