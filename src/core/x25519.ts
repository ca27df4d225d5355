// X25519 on node:crypto with raw 32-byte keys (RFC 7748): the one Diffie-Hellman primitive the
// peers' handshake (src/crypto) and the registry's proof of key possession both build on.
// Node takes keys as KeyObjects. Importing is the costly part (measured on Node 20: a PKCS#8
// private key ~360 µs, an SPKI public key ~85 µs, a JWK public key ~14 µs, the DH itself ~40 µs),
// so a private key is imported once and kept as a KeyObject, and public keys go in as JWK.
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';

export const X25519_KEY_BYTES = 32;

// PKCS#8 PrivateKeyInfo for id-X25519 (1.3.101.110), the 32 key bytes appended (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A private key ready for DH, with its public key. */
export class PrivateKey {
  private constructor(
    private readonly key: KeyObject,
    /** 32 raw bytes. */
    readonly publicKey: Buffer,
  ) {}

  static generate(): PrivateKey {
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    return new PrivateKey(privateKey, Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
  }

  /** From 32 raw bytes; any 32 bytes are a valid private key (X25519 clamps them). */
  static fromRaw(raw: Uint8Array): PrivateKey {
    if (raw.length !== X25519_KEY_BYTES) throw new RangeError('an X25519 private key is 32 bytes');
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
    return new PrivateKey(key, Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url'));
  }

  /** The 32 raw private bytes (for the identity file; keep them secret). */
  raw(): Buffer {
    return Buffer.from(this.key.export({ format: 'jwk' }).d!, 'base64url');
  }

  /**
   * X25519(this, publicKey): the 32-byte shared secret. Throws on a public key of small order
   * (an all-zero result, which OpenSSL refuses); callers treat that as a failed handshake.
   */
  dh(publicKey: Uint8Array): Buffer {
    if (publicKey.length !== X25519_KEY_BYTES) throw new RangeError('an X25519 public key is 32 bytes');
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
    return diffieHellman({ privateKey: this.key, publicKey: pub });
  }
}
