// mac1, mac2 and cookies of HANDSHAKE_INIT (WireGuard's scheme): mac1 proves the sender knows
// the responder's static key and is checked before any DH; under load the responder answers a
// valid-mac1 INIT that lacks a valid mac2 with a COOKIE_REPLY and keeps no state. The cookie is
// a MAC of the source address under a secret replaced every 120 s, so only someone who receives
// packets at that address can produce mac2.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { aeadOpen, aeadSeal, hmacSha256, KEY_BYTES, NONCE_BYTES, sha256, TAG_BYTES } from './primitives';

export const MAC_BYTES = 16;
export const COOKIE_BYTES = 16;
/** COOKIE_REPLY's body after the receiver index: nonce · sealed cookie · tag. */
export const SEALED_COOKIE_BYTES = NONCE_BYTES + COOKIE_BYTES + TAG_BYTES;
export const COOKIE_SECRET_MS = 120_000;

/** The key of mac1: SHA-256("p2pshare mac1" || responder static public key). */
export function mac1Key(responderStaticPub: Uint8Array): Buffer {
  return sha256(Buffer.from('p2pshare mac1'), responderStaticPub);
}

/** The key sealing a COOKIE_REPLY: SHA-256("p2pshare cookie" || responder static public key). */
export function cookieReplyKey(responderStaticPub: Uint8Array): Buffer {
  return sha256(Buffer.from('p2pshare cookie'), responderStaticPub);
}

/** The first 16 bytes of HMAC-SHA256(key, bytes): mac1 (key from mac1Key) or mac2 (key = the cookie). */
export function mac(key: Uint8Array, bytes: Uint8Array): Buffer {
  return hmacSha256(key, bytes).subarray(0, MAC_BYTES);
}

/** Compares in constant time. */
export function verifyMac(key: Uint8Array, bytes: Uint8Array, expected: Uint8Array): boolean {
  return expected.length === MAC_BYTES && timingSafeEqual(mac(key, bytes), expected);
}

export interface CookieSecretsOptions {
  /** Milliseconds on a clock that does not jump back; performance.now() by default. */
  now?: () => number;
  random?: (bytes: number) => Buffer;
}

/** The responder's rotating cookie secret; cookies under the current and the previous one are valid. */
export class CookieSecrets {
  private readonly now: () => number;
  private readonly random: (bytes: number) => Buffer;
  private current: Buffer;
  private previous: Buffer | undefined;
  private since: number;

  constructor(options: CookieSecretsOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.random = options.random ?? randomBytes;
    this.current = this.random(KEY_BYTES);
    this.since = this.now();
  }

  /** The cookie for a source address: first 16 bytes of HMAC-SHA256(secret, ip (16 bytes) · port u16). */
  cookie(ip: string, port: number): Buffer {
    this.rotate();
    return cookieOf(this.current, ip, port);
  }

  /** Is `mac2` the mac of `bytesBeforeMac2` under the address's cookie, by either live secret? */
  checkMac2(ip: string, port: number, bytesBeforeMac2: Uint8Array, mac2: Uint8Array): boolean {
    this.rotate();
    for (const secret of [this.current, this.previous]) {
      if (secret && verifyMac(cookieOf(secret, ip, port), bytesBeforeMac2, mac2)) return true;
    }
    return false;
  }

  private rotate(): void {
    const periods = Math.floor((this.now() - this.since) / COOKIE_SECRET_MS);
    if (periods < 1) return;
    this.previous = periods === 1 ? this.current : undefined;
    this.current = this.random(KEY_BYTES);
    this.since += periods * COOKIE_SECRET_MS;
  }
}

function cookieOf(secret: Buffer, ip: string, port: number): Buffer {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`not a port: ${port}`);
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(port);
  return hmacSha256(secret, ipBytes(ip), portBytes).subarray(0, COOKIE_BYTES);
}

/** 16 bytes of an IPv6 address; IPv4 as IPv4-mapped (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2). */
export function ipBytes(ip: string): Buffer {
  const address = ip.replace(/%.*$/, ''); // a zone ID names an interface, not the address
  const family = isIP(address);
  if (family === 0) throw new RangeError(`not an IP address: ${ip}`);
  if (family === 4) return Buffer.from([...new Array<number>(10).fill(0), 0xff, 0xff, ...address.split('.').map(Number)]);
  const [head, tail] = address.split('::') as [string, string | undefined];
  const words = (text: string | undefined): number[] =>
    !text
      ? []
      : text.split(':').flatMap((w) => {
          if (!w.includes('.')) return [parseInt(w, 16)];
          const [a, b, c, d] = w.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const front = words(head);
  const back = words(tail);
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/** COOKIE_REPLY's body: random nonce (12) · ChaCha20-Poly1305(cookie) with AD = the INIT's mac1. */
export function sealCookie(replyKey: Uint8Array, cookie: Uint8Array, mac1: Uint8Array): Buffer {
  if (cookie.length !== COOKIE_BYTES) throw new RangeError('a cookie is 16 bytes');
  const nonce = randomBytes(NONCE_BYTES);
  return Buffer.concat([nonce, aeadSeal(replyKey, nonce, mac1, [cookie])]);
}

/** The cookie, or null when `sealed` is not a COOKIE_REPLY body for the INIT whose mac1 this is. */
export function openCookie(replyKey: Uint8Array, sealed: Uint8Array, mac1: Uint8Array): Buffer | null {
  if (sealed.length !== SEALED_COOKIE_BYTES) return null;
  return aeadOpen(replyKey, sealed.subarray(0, NONCE_BYTES), mac1, sealed.subarray(NONCE_BYTES));
}
