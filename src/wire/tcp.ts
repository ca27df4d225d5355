// TCP transfer (PROTOCOL.md section 5): the requester's hello and the owner's reply, as pure
// encoders and decoders. Decoders never throw: hostile input yields `null`.

/** Requester's hello: "PST" + u8 version + u32 session ID (the ticket of its GET). */
export const TCP_HELLO_BYTES = 8;
export const TCP_MAGIC = Buffer.from('PST', 'ascii');

export function encodeTcpHello(sessionId: number, version = 1): Buffer {
  const b = Buffer.alloc(TCP_HELLO_BYTES);
  TCP_MAGIC.copy(b, 0);
  b.writeUInt8(version, 3);
  b.writeUInt32BE(sessionId >>> 0, 4);
  return b;
}

export function decodeTcpHello(b: Buffer): { version: number; sessionId: number } | null {
  if (b.length !== TCP_HELLO_BYTES || !b.subarray(0, 3).equals(TCP_MAGIC)) return null;
  return { version: b.readUInt8(3), sessionId: b.readUInt32BE(4) };
}

/** Owner's answer on TCP: u8 status + u64 byte count, then the bytes. */
export const TCP_REPLY_BYTES = 9;
export const TcpStatus = { ok: 0, badTicket: 1, badVersion: 2, internal: 3 } as const;

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
