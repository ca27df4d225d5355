// Bodies of the UDP transfer frames (types 0x10-0x13; the frame id is the session ID).
// Pure functions: encoders build Buffers, decoders return null on bad input and never throw.
// Layouts are specified byte by byte in PROTOCOL.md section 6.
//
// DATA  0x10: u32 packetNumber | u32 chunk | u32 sendTimeUs | payload (1..chunkSize bytes)
// ACK   0x11: u32 echoTimeUs | u32 ackDelayUs | u32 window | u32 cumulativeChunk | u8 n |
//             n x (u32 first, u32 last)   packet-number ranges, inclusive, descending, disjoint
// DONE  0x12: empty (receiver -> sender: every byte is on disk and fsynced)
// ABORT 0x13: u8 reason (either direction)
import { LOCAL_MAX_DATAGRAM_BYTES, MAX_DATAGRAM_BYTES, SEALED_OVERHEAD } from './frame';

export const DATA_HEADER_BYTES = 12;
export const ACK_FIXED_BYTES = 17;
/** Ranges one ACK carries at most (it could fit 180; 64 keeps ACKs small and is plenty). */
export const MAX_ACK_RANGES = 64;
/** Largest payload that fits a network path's datagram with the sealed frame and the DATA header:
 *  1423. A connection with more overhead has less room (the chunk size comes from its maxBody). */
export const MAX_PAYLOAD_BYTES = MAX_DATAGRAM_BYTES - SEALED_OVERHEAD - DATA_HEADER_BYTES;
/** Largest payload of a DATA between two endpoints of one host: 16,335. */
export const LOCAL_MAX_PAYLOAD_BYTES = LOCAL_MAX_DATAGRAM_BYTES - SEALED_OVERHEAD - DATA_HEADER_BYTES;
/** Smallest chunk size an owner accepts in GET_REQUEST's max payload. */
export const MIN_PAYLOAD_BYTES = 64;

export interface DataPacket {
  packetNumber: number;
  chunk: number;
  sendTimeUs: number;
  payload: Buffer;
}

/** Inclusive packet-number range. */
export interface PnRange {
  first: number;
  last: number;
}

export interface AckPacket {
  echoTimeUs: number;
  ackDelayUs: number;
  /** Chunks the receiver can take now (free write slots): flow control. */
  window: number;
  /** Every chunk below this one has been received. */
  cumulativeChunk: number;
  /** Received packet numbers, highest range first. At least one. */
  ranges: PnRange[];
}

export const AbortReason = {
  cancelled: 1,
  ioError: 2,
  timeout: 3,
  badRequest: 4,
} as const;

export function abortReasonText(reason: number): string {
  switch (reason) {
    case AbortReason.cancelled:
      return 'cancelled';
    case AbortReason.ioError:
      return 'file error';
    case AbortReason.timeout:
      return 'timed out';
    case AbortReason.badRequest:
      return 'bad request';
    default:
      return `reason ${reason}`;
  }
}

export type DataHeader = Omit<DataPacket, 'payload'>;

/** The DATA header alone: a sender passes it and the payload as two parts of one frame body. */
export function encodeDataHeader(p: DataHeader): Buffer {
  const out = Buffer.allocUnsafe(DATA_HEADER_BYTES);
  out.writeUInt32BE(p.packetNumber >>> 0, 0);
  out.writeUInt32BE(p.chunk >>> 0, 4);
  out.writeUInt32BE(p.sendTimeUs >>> 0, 8);
  return out;
}

/** A whole DATA body in one buffer (header and payload). */
export function encodeData(p: DataHeader, payload: Uint8Array): Buffer {
  return Buffer.concat([encodeDataHeader(p), payload]);
}

/** `payload` is a view into `body`. An empty payload is malformed. */
export function decodeData(body: Buffer): DataPacket | null {
  if (body.length <= DATA_HEADER_BYTES || body.length > DATA_HEADER_BYTES + LOCAL_MAX_PAYLOAD_BYTES) return null;
  return {
    packetNumber: body.readUInt32BE(0),
    chunk: body.readUInt32BE(4),
    sendTimeUs: body.readUInt32BE(8),
    payload: body.subarray(DATA_HEADER_BYTES),
  };
}

/** Encodes at most MAX_ACK_RANGES ranges (the highest ones). */
export function encodeAck(a: AckPacket): Buffer {
  const n = Math.min(a.ranges.length, MAX_ACK_RANGES);
  const out = Buffer.allocUnsafe(ACK_FIXED_BYTES + 8 * n);
  out.writeUInt32BE(a.echoTimeUs >>> 0, 0);
  out.writeUInt32BE(clampU32(a.ackDelayUs), 4);
  out.writeUInt32BE(clampU32(a.window), 8);
  out.writeUInt32BE(a.cumulativeChunk >>> 0, 12);
  out.writeUInt8(n, 16);
  for (let i = 0; i < n; i++) {
    out.writeUInt32BE(a.ranges[i].first >>> 0, ACK_FIXED_BYTES + 8 * i);
    out.writeUInt32BE(a.ranges[i].last >>> 0, ACK_FIXED_BYTES + 8 * i + 4);
  }
  return out;
}

/** Rejects an ACK without ranges, with first > last, or ranges not strictly descending with a gap. */
export function decodeAck(body: Buffer): AckPacket | null {
  if (body.length < ACK_FIXED_BYTES + 8) return null;
  const n = body.readUInt8(16);
  if (n === 0 || n > MAX_ACK_RANGES || body.length !== ACK_FIXED_BYTES + 8 * n) return null;
  const ranges: PnRange[] = [];
  let below = Infinity; // the next range must end below this
  for (let i = 0; i < n; i++) {
    const first = body.readUInt32BE(ACK_FIXED_BYTES + 8 * i);
    const last = body.readUInt32BE(ACK_FIXED_BYTES + 8 * i + 4);
    if (first > last || last >= below) return null;
    ranges.push({ first, last });
    below = first - 1; // leaves at least one missing packet between ranges
  }
  return {
    echoTimeUs: body.readUInt32BE(0),
    ackDelayUs: body.readUInt32BE(4),
    window: body.readUInt32BE(8),
    cumulativeChunk: body.readUInt32BE(12),
    ranges,
  };
}

export function encodeDone(): Buffer {
  return Buffer.alloc(0);
}

export function decodeDone(body: Buffer): true | null {
  return body.length === 0 ? true : null;
}

export function encodeAbort(reason: number): Buffer {
  return Buffer.from([reason & 0xff]);
}

export function decodeAbort(body: Buffer): number | null {
  return body.length === 1 ? body.readUInt8(0) : null;
}

function clampU32(v: number): number {
  return Math.max(0, Math.min(0xffffffff, Math.floor(v)));
}
