// The frame every peer-to-peer UDP datagram is wrapped in (PROTOCOL.md, "Datagram frame").
// Pure functions: no I/O, never throw on input from the network.
//
//   0      2        3      4            8                 n-4        n
//   | "PS" | version | type | id (u32 BE) | body ...         | crc32 BE |
//
// crc32 is CRC-32/ISO-HDLC (zlib's, the one in Ethernet and PNG) over bytes [0, n-4).
// `id` is the request ID for control messages and the session ID for transfer messages.
import { crc32 } from 'node:zlib';

export const FRAME_MAGIC = 0x5053; // "PS"
export const PROTOCOL_VERSION = 1;
export const FRAME_HEADER_BYTES = 8;
export const FRAME_TRAILER_BYTES = 4;
export const FRAME_OVERHEAD = FRAME_HEADER_BYTES + FRAME_TRAILER_BYTES;
/** Largest datagram accepted or sent: 1500-byte MTU minus IPv4 (20) and UDP (8) headers. */
export const MAX_DATAGRAM_BYTES = 1472;

/** Message types. Control: 0x01–0x0f; UDP transfer: 0x10–0x1f; 0x7f: version not supported. */
export const FrameType = {
  listRequest: 0x01,
  listResponse: 0x02,
  getRequest: 0x03,
  getResponse: 0x04,
  data: 0x10,
  ack: 0x11,
  done: 0x12,
  abort: 0x13,
  versionNotSupported: 0x7f,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export interface Frame {
  version: number;
  type: number;
  id: number;
  body: Buffer;
}

export type FrameError = 'too_short' | 'too_long' | 'bad_magic' | 'bad_checksum';

/**
 * The whole datagram. The body is one buffer or several parts in order (a DATA header and its
 * payload), copied once into the datagram: the per-datagram hot path makes no other copy.
 */
export function encodeFrame(type: number, id: number, body: Uint8Array | readonly Uint8Array[] = [], version = PROTOCOL_VERSION): Buffer {
  const parts = body instanceof Uint8Array ? [body] : body;
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafe(FRAME_OVERHEAD + length);
  out.writeUInt16BE(FRAME_MAGIC, 0);
  out.writeUInt8(version, 2);
  out.writeUInt8(type, 3);
  out.writeUInt32BE(id >>> 0, 4);
  let at = FRAME_HEADER_BYTES;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  const end = out.length - FRAME_TRAILER_BYTES;
  out.writeUInt32BE(crc32(out.subarray(0, end)), end);
  return out;
}

/**
 * Checks length, magic and checksum. The version is returned, not judged: the caller answers
 * an unknown version with `versionNotSupported` (only after the checksum proved it is not noise).
 * `body` is a view into `buf`, not a copy.
 */
export function decodeFrame(buf: Buffer): Frame | FrameError {
  if (buf.length < FRAME_OVERHEAD) return 'too_short';
  if (buf.length > MAX_DATAGRAM_BYTES) return 'too_long';
  if (buf.readUInt16BE(0) !== FRAME_MAGIC) return 'bad_magic';
  const end = buf.length - FRAME_TRAILER_BYTES;
  if (crc32(buf.subarray(0, end)) !== buf.readUInt32BE(end)) return 'bad_checksum';
  return {
    version: buf.readUInt8(2),
    type: buf.readUInt8(3),
    id: buf.readUInt32BE(4),
    body: buf.subarray(FRAME_HEADER_BYTES, end),
  };
}
