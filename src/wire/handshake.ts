// Layouts of the handshake's clear frames (PROTOCOL.md 3.4): HANDSHAKE_INIT, HANDSHAKE_RESP,
// COOKIE_REPLY and VERSION_NOT_SUPPORTED. Pure: what goes inside (Noise messages, macs, the
// sealed cookie) is made by src/crypto; this module only places and finds the fields.
//
//   INIT   | header (sender index) | msg1 (108) | mac1 (16) | mac2 (16) | crc |   152 bytes
//   RESP   | header (sender index) | receiver index u32 | msg2 (48) | crc |       64 bytes
//   COOKIE | header (receiver index) | nonce + sealed cookie (44) | crc |         56 bytes
//   VNS    | header (echoed field) | lowest u8 | highest u8 | crc |               14 bytes
import { CLEAR_OVERHEAD, encodeClearFrame, Envelope, FRAME_HEADER_BYTES, PROTOCOL_VERSION, writeCrc, type ClearFrame } from './frame';

export const MSG1_BYTES = 108; // e 32 + s 32+16 + timestamp 12+16
export const MSG2_BYTES = 48; // e 32 + empty payload's tag 16
export const MAC_BYTES = 16;
export const SEALED_COOKIE_BYTES = 44; // nonce 12 + cookie 16 + tag 16
export const INIT_BYTES = CLEAR_OVERHEAD + MSG1_BYTES + 2 * MAC_BYTES; // 152
export const RESP_BYTES = CLEAR_OVERHEAD + 4 + MSG2_BYTES; // 64
export const COOKIE_REPLY_BYTES = CLEAR_OVERHEAD + SEALED_COOKIE_BYTES; // 56
/** Where mac1 and mac2 start in an INIT: each covers every byte before it. */
export const MAC1_AT = FRAME_HEADER_BYTES + MSG1_BYTES; // 116
export const MAC2_AT = MAC1_AT + MAC_BYTES; // 132

export interface Init {
  senderIndex: number;
  msg1: Buffer;
  mac1: Buffer;
  mac2: Buffer;
}

/**
 * An INIT with mac1 and mac2 computed by `macs` over the bytes before each (in that order), then
 * the CRC over all of it.
 */
export function encodeInit(senderIndex: number, msg1: Uint8Array, macs: { mac1: (before: Buffer) => Buffer; mac2: (before: Buffer) => Buffer }): Buffer {
  if (msg1.length !== MSG1_BYTES) throw new RangeError(`msg1 is ${MSG1_BYTES} bytes`);
  const out = encodeClearFrame(Envelope.handshakeInit, senderIndex, [msg1, Buffer.alloc(2 * MAC_BYTES)]);
  out.set(macs.mac1(out.subarray(0, MAC1_AT)).subarray(0, MAC_BYTES), MAC1_AT);
  out.set(macs.mac2(out.subarray(0, MAC2_AT)).subarray(0, MAC_BYTES), MAC2_AT);
  return writeCrc(out);
}

/** Fields of an INIT (views into `frame`'s buffer); null when the length is not exact. */
export function decodeInit(frame: ClearFrame): Init | null {
  if (frame.body.length !== MSG1_BYTES + 2 * MAC_BYTES) return null;
  return {
    senderIndex: frame.id,
    msg1: frame.body.subarray(0, MSG1_BYTES),
    mac1: frame.body.subarray(MSG1_BYTES, MSG1_BYTES + MAC_BYTES),
    mac2: frame.body.subarray(MSG1_BYTES + MAC_BYTES),
  };
}

/** The bytes mac1 and mac2 of an INIT cover (both start at the frame's first byte). */
export function initMacInputs(datagram: Buffer): { beforeMac1: Buffer; beforeMac2: Buffer } {
  return { beforeMac1: datagram.subarray(0, MAC1_AT), beforeMac2: datagram.subarray(0, MAC2_AT) };
}

export function encodeResp(senderIndex: number, receiverIndex: number, msg2: Uint8Array): Buffer {
  if (msg2.length !== MSG2_BYTES) throw new RangeError(`msg2 is ${MSG2_BYTES} bytes`);
  const index = Buffer.allocUnsafe(4);
  index.writeUInt32BE(receiverIndex >>> 0);
  return encodeClearFrame(Envelope.handshakeResp, senderIndex, [index, msg2]);
}

export function decodeResp(frame: ClearFrame): { senderIndex: number; receiverIndex: number; msg2: Buffer } | null {
  if (frame.body.length !== 4 + MSG2_BYTES) return null;
  return { senderIndex: frame.id, receiverIndex: frame.body.readUInt32BE(0), msg2: frame.body.subarray(4) };
}

export function encodeCookieReply(receiverIndex: number, sealedCookie: Uint8Array): Buffer {
  if (sealedCookie.length !== SEALED_COOKIE_BYTES) throw new RangeError(`a sealed cookie is ${SEALED_COOKIE_BYTES} bytes`);
  return encodeClearFrame(Envelope.cookieReply, receiverIndex, sealedCookie);
}

export function decodeCookieReply(frame: ClearFrame): { receiverIndex: number; sealedCookie: Buffer } | null {
  if (frame.body.length !== SEALED_COOKIE_BYTES) return null;
  return { receiverIndex: frame.id, sealedCookie: frame.body };
}

/** VERSION_NOT_SUPPORTED in the asker's own version's framing, echoing its 4-byte field. */
export function encodeVersionNotSupported(id: number, askerVersion: number): Buffer {
  return encodeClearFrame(Envelope.versionNotSupported, id, Buffer.from([PROTOCOL_VERSION, PROTOCOL_VERSION]), askerVersion);
}

export function decodeVersionNotSupported(frame: ClearFrame): { lowest: number; highest: number } | null {
  return frame.body.length >= 2 ? { lowest: frame.body[0]!, highest: frame.body[1]! } : null;
}
