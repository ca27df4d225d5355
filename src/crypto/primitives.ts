// The node:crypto primitives of the secure channel, in one place: SHA-256, HMAC-SHA256 and
// ChaCha20-Poly1305 (RFC 8439) with the Noise nonce encoding (Noise spec section 12.3: 4 zero
// bytes, then the 64-bit counter little-endian).
import { createCipheriv, createDecipheriv, createHash, createHmac, type DecipherChaCha20Poly1305 } from 'node:crypto';

export const KEY_BYTES = 32;
export const TAG_BYTES = 16;
export const NONCE_BYTES = 12;

const AEAD = 'chacha20-poly1305';

export function sha256(...parts: readonly Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function hmacSha256(key: Uint8Array, ...parts: readonly Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * Writes the Noise nonce for `counter` into `nonce` (12 bytes; bytes 0..3 must be zero).
 * `counter` is a safe integer, so the high word is below 2^21.
 */
export function writeNonce(nonce: Buffer, counter: number): Buffer {
  nonce.writeUInt32LE(counter >>> 0, 4);
  nonce.writeUInt32LE(Math.floor(counter / 0x1_0000_0000), 8);
  return nonce;
}

export function noiseNonce(counter: number): Buffer {
  return writeNonce(Buffer.alloc(NONCE_BYTES), counter);
}

/**
 * ciphertext || tag of the concatenated parts. Node's update() always allocates its output, and
 * each call costs about a microsecond, so several parts are first gathered into the output
 * buffer and encrypted with one update(); the ciphertext then overwrites them there.
 */
export function aeadSeal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafe(length + TAG_BYTES);
  let plaintext: Uint8Array;
  if (parts.length === 1) {
    plaintext = parts[0]!;
  } else {
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    plaintext = out.subarray(0, length);
  }
  const cipher = createCipheriv(AEAD, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(ad, { plaintextLength: length });
  // A stream cipher: update() returns every byte and final() none.
  cipher.update(plaintext).copy(out, 0);
  cipher.final();
  cipher.getAuthTag().copy(out, length);
  return out;
}

/**
 * The ciphertext and the tag as two buffers, for a writer that sends them one after the other:
 * no copy of the ciphertext into a joint buffer (a TCP record is 64 KiB).
 */
export function aeadSealDetached(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): [ciphertext: Buffer, tag: Buffer] {
  const cipher = createCipheriv(AEAD, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(ad, { plaintextLength: plaintext.length });
  const ciphertext = cipher.update(plaintext);
  cipher.final();
  return [ciphertext, cipher.getAuthTag()];
}

/** The plaintext, or null when the input is shorter than a tag or does not authenticate. */
export function aeadOpen(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Buffer | null {
  if (sealed.length < TAG_BYTES) return null;
  const length = sealed.length - TAG_BYTES;
  const decipher = createDecipheriv(AEAD, key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(ad, { plaintextLength: length });
  decipher.setAuthTag(sealed.subarray(length));
  const plaintext = decipher.update(sealed.subarray(0, length));
  return tagVerifies(decipher) ? plaintext : null;
}

/**
 * final(): whether the tag verified. final() reports a bad tag only by throwing; without a stack
 * trace the throw costs about half (forged frames are the attacker's to send, so their cost matters).
 */
function tagVerifies(decipher: DecipherChaCha20Poly1305): boolean {
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    decipher.final();
    return true;
  } catch {
    return false;
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/**
 * aeadOpen of sealed bytes given in pieces (ciphertext then tag, cut anywhere): the plaintext in
 * as many pieces, or null. Nothing is joined but a tag cut in two (16 bytes). The pieces of
 * plaintext exist only once the tag verified, as with aeadOpen.
 */
export function aeadOpenPieces(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: readonly Buffer[]): Buffer[] | null {
  let total = 0;
  for (const p of sealed) total += p.length;
  if (total < TAG_BYTES) return null;
  const length = total - TAG_BYTES;
  const last = sealed[sealed.length - 1]!;
  const tag = last.length >= TAG_BYTES ? last.subarray(last.length - TAG_BYTES) : Buffer.concat(sealed).subarray(length);
  const decipher = createDecipheriv(AEAD, key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(ad, { plaintextLength: length });
  decipher.setAuthTag(tag);
  const plaintext: Buffer[] = [];
  let at = 0;
  for (const p of sealed) {
    const take = Math.min(p.length, length - at);
    if (take <= 0) break;
    plaintext.push(decipher.update(take === p.length ? p : p.subarray(0, take)));
    at += take;
  }
  return tagVerifies(decipher) ? plaintext : null;
}

const REKEY_NONCE = Buffer.from('00000000ffffffffffffffff', 'hex');
const ZEROS = Buffer.alloc(KEY_BYTES);
const EMPTY = Buffer.alloc(0);

/** Noise Rekey (spec sections 4.2 and 11.3): the first 32 bytes of ENCRYPT(k, 2^64 − 1, empty, 32 zeros). */
export function rekey(key: Uint8Array): Buffer {
  return aeadSeal(key, REKEY_NONCE, EMPTY, [ZEROS]).subarray(0, KEY_BYTES);
}
