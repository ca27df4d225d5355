// Proof of key possession for registrations (README.md, "The registry API with curl"): the
// registry's keys derived from its secret, the challenges it hands out, and the mac a peer
// computes over its registration. Used by the registry server and by the peers' client alike.
// No I/O: time and randomness come in as arguments.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { PrivateKey, X25519_KEY_BYTES } from '../core/x25519';

/** u64 expiry (ms since the epoch) | 16 random bytes | 16 bytes of HMAC over the first 24. */
export const CHALLENGE_BYTES = 40;
const CHALLENGE_SIGNED_BYTES = 24;
export const CHALLENGE_RANDOM_BYTES = 16;
/** How long a challenge is valid after it was issued. */
export const CHALLENGE_TTL_MS = 60_000;
export const MAC_BYTES = 32;

export interface RegistryKeys {
  /** The registry's X25519 key: peers compute their mac with its public half. */
  x25519: PrivateKey;
  /** Authenticates the challenges this registry (deployment) issued. */
  challengeKey: Buffer;
}

const hmac = (key: Uint8Array, data: Uint8Array | string): Buffer => createHmac('sha256', key).update(data).digest();

/** The registry's keys from its 32-byte secret (every registry process on one Redis has the same). */
export function deriveRegistryKeys(secret: Uint8Array): RegistryKeys {
  return {
    x25519: PrivateKey.fromRaw(hmac(secret, 'p2pshare registry x25519')),
    challengeKey: hmac(secret, 'p2pshare registry challenge'),
  };
}

export function issueChallenge(challengeKey: Uint8Array, expiresAt: number, random: Uint8Array): Buffer {
  if (random.length !== CHALLENGE_RANDOM_BYTES) throw new RangeError(`a challenge takes ${CHALLENGE_RANDOM_BYTES} random bytes`);
  const head = Buffer.alloc(CHALLENGE_SIGNED_BYTES);
  head.writeBigUInt64BE(BigInt(expiresAt), 0);
  head.set(random, 8);
  return Buffer.concat([head, hmac(challengeKey, head).subarray(0, CHALLENGE_BYTES - CHALLENGE_SIGNED_BYTES)]);
}

/** Milliseconds since the epoch after which the challenge is refused. */
export function challengeExpiry(challenge: Buffer): number {
  return Number(challenge.readBigUInt64BE(0));
}

/** The 16 random bytes, as hex: what makes a challenge single-use in the store. */
export function challengeId(challenge: Buffer): string {
  return challenge.subarray(8, CHALLENGE_SIGNED_BYTES).toString('hex');
}

/** 'forged' for a challenge this registry did not issue (another secret, or altered bytes). */
export function checkChallenge(challengeKey: Uint8Array, challenge: Buffer, now: number): 'ok' | 'expired' | 'forged' {
  if (challenge.length !== CHALLENGE_BYTES) return 'forged';
  const want = hmac(challengeKey, challenge.subarray(0, CHALLENGE_SIGNED_BYTES)).subarray(0, CHALLENGE_BYTES - CHALLENGE_SIGNED_BYTES);
  if (!timingSafeEqual(want, challenge.subarray(CHALLENGE_SIGNED_BYTES))) return 'forged';
  return challengeExpiry(challenge) <= now ? 'expired' : 'ok';
}

/** The registration fields the mac covers, with the values exactly as sent in the body. */
export interface SignedFields {
  name: string;
  port: number;
  ip?: string | null | undefined;
  addresses?: string[] | null | undefined;
  /** base64url, as in the body. */
  publicKey: string;
}

/** challenge || UTF-8 of JSON.stringify([name, port, ip ?? null, addresses ?? [], publicKey]). */
export function proofMessage(challenge: Buffer, f: SignedFields): Buffer {
  const fields = JSON.stringify([f.name, f.port, f.ip ?? null, f.addresses ?? [], f.publicKey]);
  return Buffer.concat([challenge, Buffer.from(fields, 'utf8')]);
}

/** HMAC-SHA256(SHA-256("p2pshare register v1" || shared), message). */
function macFromShared(shared: Buffer, message: Buffer): Buffer {
  const key = createHash('sha256').update('p2pshare register v1').update(shared).digest();
  return hmac(key, message);
}

/** The peer's side: the mac of its registration, from X25519(its key, the registry's key). Throws on a small-order registry key. */
export function registrationMac(identity: PrivateKey, registryKey: Uint8Array, challenge: Buffer, f: SignedFields): Buffer {
  return macFromShared(identity.dh(registryKey), proofMessage(challenge, f));
}

/**
 * The registry's side, with X25519(its key, the peer's key): 'bad_key' when the peer's key
 * cannot be used (small order), else whether the mac is right.
 */
export function verifyRegistrationMac(registry: PrivateKey, publicKey: Uint8Array, challenge: Buffer, f: SignedFields, mac: Buffer): boolean | 'bad_key' {
  let shared: Buffer;
  try {
    shared = registry.dh(publicKey);
  } catch {
    return 'bad_key';
  }
  const want = macFromShared(shared, proofMessage(challenge, f));
  return mac.length === want.length && timingSafeEqual(mac, want);
}

export interface RegistrationFields {
  name: string;
  port: number;
  ip?: string;
  addresses?: string[];
}

/**
 * The POST /v1/peers body for `fields`, bound to `identity` and proven over the answer of
 * GET /v1/challenge; null when that answer is malformed or its registry key unusable.
 */
export function signRegistration(identity: PrivateKey, answer: unknown, fields: RegistrationFields): (RegistrationFields & { publicKey: string; proof: { challenge: string; mac: string } }) | null {
  const a = (typeof answer === 'object' && answer !== null ? answer : {}) as { challenge?: unknown; registryKey?: unknown };
  const challenge = fromBase64url(a.challenge, CHALLENGE_BYTES);
  const registryKey = fromBase64url(a.registryKey, X25519_KEY_BYTES);
  if (!challenge || !registryKey) return null;
  const signed = { ...fields, publicKey: toBase64url(identity.publicKey) };
  let mac: Buffer;
  try {
    mac = registrationMac(identity, registryKey, challenge, signed);
  } catch {
    return null; // a small-order registry key
  }
  return { ...signed, proof: { challenge: toBase64url(challenge), mac: toBase64url(mac) } };
}

/** base64url without padding, as keys, challenges and macs travel in JSON. */
export function toBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/**
 * The bytes of a base64url text of exactly `length` bytes, or null. Only the one canonical
 * spelling is accepted (no padding, no other characters, unused low bits zero), so one key has
 * one text.
 */
export function fromBase64url(text: unknown, length: number): Buffer | null {
  if (typeof text !== 'string' || text.length !== Math.ceil((length * 4) / 3) || !/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.length === length && bytes.toString('base64url') === text ? bytes : null;
}
