// The envelopes every peer-to-peer UDP datagram comes in (PROTOCOL.md 3.1). Pure functions: no
// I/O, never throw on input from the network.
//
//   clear frame:   | "PS" | version | type | u32 field | body ...                | crc32 |
//   sealed frame:  | "PS" | version | 0x04 | receiver index | u64 counter | ciphertext | tag |
//
// Clear frames (the handshake and VERSION_NOT_SUPPORTED) keep version 1's CRC-32 trailer
// (CRC-32/ISO-HDLC, zlib's) so peers of another version recognise them; sealed frames carry an
// AEAD tag instead, and inside the ciphertext a message: u8 type | u32 id | body.
import { crc32 } from 'node:zlib';

export const FRAME_MAGIC = 0x5053; // "PS"
export const PROTOCOL_VERSION = 2;
export const FRAME_HEADER_BYTES = 8;
export const FRAME_TRAILER_BYTES = 4;
/** A clear frame's bytes beyond its body: header and CRC. */
export const CLEAR_OVERHEAD = FRAME_HEADER_BYTES + FRAME_TRAILER_BYTES;
/** Largest datagram on a network path: 1500-byte MTU minus IPv4 (20) and UDP (8) headers. */
export const MAX_DATAGRAM_BYTES = 1472;
/**
 * Largest datagram between two endpoints of one host (loopback, or a local address, PROTOCOL.md
 * 6.1): the kernel carries it whole (loopback's MTU is 65,536), so fewer, larger datagrams cost
 * fewer sealings. Also the most any datagram may be: a larger one is dropped as too long.
 */
export const LOCAL_MAX_DATAGRAM_BYTES = 16_384;
/** The clear part of a sealed frame (header and counter): the AEAD's associated data. */
export const SEALED_HEADER_BYTES = 16;
export const TAG_BYTES = 16;
/** A message's own header inside the ciphertext: type and id. */
export const MESSAGE_HEADER_BYTES = 5;
/** A sealed frame's bytes beyond its message body: 37. */
export const SEALED_OVERHEAD = SEALED_HEADER_BYTES + MESSAGE_HEADER_BYTES + TAG_BYTES;

/** The type byte of the envelope (PROTOCOL.md 3.1). */
export const Envelope = {
  handshakeInit: 0x01,
  handshakeResp: 0x02,
  cookieReply: 0x03,
  sealed: 0x04,
  /** A datagram wrapped for a registry's relay (PROTOCOL.md 9). */
  relay: 0x27,
  versionNotSupported: 0x7f,
} as const;

/**
 * Message types inside a sealed frame. Control: 0x01–0x0f; UDP transfer: 0x10–0x1f.
 * (Called frame types since version 1, where they were the envelope's.)
 */
export const FrameType = {
  listRequest: 0x01,
  listResponse: 0x02,
  getRequest: 0x03,
  getResponse: 0x04,
  close: 0x05,
  pathChallenge: 0x06,
  pathResponse: 0x07,
  data: 0x10,
  ack: 0x11,
  done: 0x12,
  abort: 0x13,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** A message: from a sealed frame's plaintext, or a clear frame's fields. */
export interface Frame {
  type: number;
  id: number;
  body: Buffer;
}

export interface ClearFrame extends Frame {
  version: number;
}

export type FrameError = 'too_short' | 'too_long' | 'bad_magic' | 'bad_checksum';

/** Checks what every datagram must have: length and magic. */
export function checkDatagram(buf: Buffer): FrameError | null {
  if (buf.length < CLEAR_OVERHEAD) return 'too_short';
  if (buf.length > LOCAL_MAX_DATAGRAM_BYTES) return 'too_long';
  if (buf.readUInt16BE(0) !== FRAME_MAGIC) return 'bad_magic';
  return null;
}

/** The version and envelope type of a datagram that passed checkDatagram. */
export function envelopeOf(buf: Buffer): { version: number; type: number } {
  return { version: buf[2]!, type: buf[3]! };
}

/**
 * A clear frame: header, the body (one buffer or parts, copied once), CRC-32. `version` is
 * ours unless we answer a peer of another version in its own framing.
 */
export function encodeClearFrame(type: number, id: number, body: Uint8Array | readonly Uint8Array[] = [], version = PROTOCOL_VERSION): Buffer {
  const parts = body instanceof Uint8Array ? [body] : body;
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafe(CLEAR_OVERHEAD + length);
  out.writeUInt16BE(FRAME_MAGIC, 0);
  out.writeUInt8(version, 2);
  out.writeUInt8(type, 3);
  out.writeUInt32BE(id >>> 0, 4);
  let at = FRAME_HEADER_BYTES;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return writeCrc(out);
}

/** (Re)writes the CRC-32 trailer of a clear frame built in place (the handshake's macs go in first). */
export function writeCrc(frame: Buffer): Buffer {
  const end = frame.length - FRAME_TRAILER_BYTES;
  frame.writeUInt32BE(crc32(frame.subarray(0, end)), end);
  return frame;
}

/**
 * Checks length, magic and checksum of a clear frame. The version is returned, not judged: the
 * caller answers an unknown version (only after the checksum proved it is not noise).
 * `body` is a view into `buf`, not a copy.
 */
export function decodeClearFrame(buf: Buffer): ClearFrame | FrameError {
  const bad = checkDatagram(buf);
  if (bad) return bad;
  if (buf.length > MAX_DATAGRAM_BYTES) return 'too_long'; // clear frames are small on every path
  const end = buf.length - FRAME_TRAILER_BYTES;
  if (crc32(buf.subarray(0, end)) !== buf.readUInt32BE(end)) return 'bad_checksum';
  return {
    version: buf.readUInt8(2),
    type: buf.readUInt8(3),
    id: buf.readUInt32BE(4),
    body: buf.subarray(FRAME_HEADER_BYTES, end),
  };
}

/** The 16 clear bytes of a sealed frame: header and counter (the associated data). */
export function encodeSealedHeader(receiverIndex: number, counter: number): Buffer {
  const out = Buffer.allocUnsafe(SEALED_HEADER_BYTES);
  out.writeUInt16BE(FRAME_MAGIC, 0);
  out.writeUInt8(PROTOCOL_VERSION, 2);
  out.writeUInt8(Envelope.sealed, 3);
  out.writeUInt32BE(receiverIndex >>> 0, 4);
  out.writeBigUInt64BE(BigInt(counter), 8);
  return out;
}

export interface SealedFrame {
  receiverIndex: number;
  /** Above 2^53 - 1 it is returned as Infinity: no connection ever accepts it. */
  counter: number;
  header: Buffer;
  sealed: Buffer;
}

/** Splits a sealed frame (already through checkDatagram) into header and ciphertext; null if too short. */
export function decodeSealedFrame(buf: Buffer): SealedFrame | null {
  if (buf.length < SEALED_HEADER_BYTES + MESSAGE_HEADER_BYTES + TAG_BYTES) return null;
  const big = buf.readBigUInt64BE(8);
  return {
    receiverIndex: buf.readUInt32BE(4),
    counter: big > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(big),
    header: buf.subarray(0, SEALED_HEADER_BYTES),
    sealed: buf.subarray(SEALED_HEADER_BYTES),
  };
}

/** The 5 bytes that start a message inside the ciphertext. */
export function encodeMessageHeader(type: number, id: number): Buffer {
  const out = Buffer.allocUnsafe(MESSAGE_HEADER_BYTES);
  out.writeUInt8(type, 0);
  out.writeUInt32BE(id >>> 0, 1);
  return out;
}

/** A message from a decrypted plaintext (a view into it); null when too short. */
export function decodeMessage(plaintext: Buffer): Frame | null {
  if (plaintext.length < MESSAGE_HEADER_BYTES) return null;
  return { type: plaintext[0]!, id: plaintext.readUInt32BE(1), body: plaintext.subarray(MESSAGE_HEADER_BYTES) };
}
