// Helpers for the STUN tests: datagram mutation, hand-built messages.
import { randomBytes } from 'node:crypto';

/** Appends one attribute (zero padded) and fixes the header length; `declaredLength` lies on purpose. */
export function withAttribute(message: Buffer, type: number, value: Buffer, declaredLength = value.length): Buffer {
  const padded = (value.length + 3) & ~3;
  const a = Buffer.alloc(4 + padded);
  a.writeUInt16BE(type, 0);
  a.writeUInt16BE(declaredLength, 2);
  value.copy(a, 4);
  const out = Buffer.concat([message, a]);
  out.writeUInt16BE(out.length - 20, 2);
  return out;
}

/** An RFC 3489 Binding request: no magic cookie, a 16-byte transaction id, no attributes. */
export function legacyRequest(id: Buffer = randomBytes(16)): Buffer {
  const out = Buffer.alloc(20);
  out.writeUInt16BE(0x0001, 0);
  id.copy(out, 4, 0, 16);
  return out;
}

/** One random edit of a valid datagram: bit flips, truncation, extension, length lies, splices. */
export function mutateDatagram(rand: () => number, seed: Buffer): Buffer {
  const b = Buffer.from(seed);
  const at = Math.floor(rand() * b.length);
  switch (Math.floor(rand() * 7)) {
    case 0:
      b[at]! ^= 1 << Math.floor(rand() * 8);
      return b;
    case 1:
      return b.subarray(0, at);
    case 2:
      return Buffer.concat([b, randomBytes(1 + Math.floor(rand() * 40))]);
    case 3:
      b.writeUInt16BE(Math.floor(rand() * 0x10000), 2);
      return b;
    case 4: // the first attribute's length lies (or, without attributes, the type changes)
      b.writeUInt16BE(Math.floor(rand() * 0x10000), b.length >= 24 ? 22 : 0);
      return b;
    case 5:
      b[at] = Math.floor(rand() * 256);
      return b;
    default:
      return Buffer.concat([b.subarray(0, at), randomBytes(4 * Math.floor(rand() * 4)), b.subarray(at)]);
  }
}
