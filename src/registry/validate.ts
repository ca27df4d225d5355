// Pure checks of what clients send: registration bodies, list parameters, cursors, tokens
// (README.md, "The registry API with curl").
import { X25519_KEY_BYTES } from '../core/x25519';
import { judgeClaim } from './address-policy';
import { isValidIp, normalizeIp } from '../core/addresses';
import { isValidName, isValidPrefix, nameKey } from './names';
import { CHALLENGE_BYTES, fromBase64url, MAC_BYTES, type SignedFields } from './proof';

export const MAX_ADDRESSES = 8;
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

export interface Registration {
  name: string;
  port: number;
  ip: string;
  addresses: string[];
}

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * Validates a POST /v1/peers body (already JSON-parsed) against the address the request came
 * from. Each claimed address (`ip`, every entry of `addresses`) must be the observed address or a
 * private one; a loopback or unspecified address claimed by a non-loopback client is replaced by
 * the observed one (judgeClaim). `addressRefused` tells a refused address from a malformed body.
 */
export function checkRegistration(body: unknown, observed: string): Checked<Registration> | { ok: false; message: string; addressRefused: true } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad('body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (!isValidName(b.name)) return bad('name must be 1-32 characters of letters, digits, ".", "_", "-"');
  if (typeof b.port !== 'number' || !Number.isInteger(b.port) || b.port < 1 || b.port > 65535) {
    return bad('port must be an integer from 1 to 65535');
  }
  let ip = observed;
  if (b.ip !== undefined && b.ip !== null) {
    if (!isValidIp(b.ip)) return bad('ip must be an IPv4 or IPv6 address');
    ip = normalizeIp(b.ip);
  }
  let addresses: string[] = [];
  if (b.addresses !== undefined && b.addresses !== null) {
    if (!Array.isArray(b.addresses)) return bad('addresses must be an array of IP addresses');
    if (b.addresses.length > MAX_ADDRESSES) return bad(`addresses may hold at most ${MAX_ADDRESSES} entries`);
    for (const a of b.addresses) if (!isValidIp(a)) return bad('addresses must be an array of IP addresses');
    addresses = (b.addresses as string[]).map(normalizeIp);
  }
  const judged = [ip, ...addresses].map((a) => judgeClaim(a, observed));
  for (const j of judged) if (!j.ok) return { ok: false, message: j.message, addressRefused: true };
  const kept = judged.map((j) => (j as { address: string }).address);
  return { ok: true, value: { name: b.name, port: b.port, ip: kept[0]!, addresses: [...new Set(kept.slice(1))] } };
}

export interface KeyProof {
  publicKey: Buffer;
  challenge: Buffer;
  mac: Buffer;
  /** What the mac covers, the values as sent. */
  signed: SignedFields;
}

/**
 * The `publicKey` and `proof` of a registration body that checkRegistration accepted.
 * `missing` tells a body without them (an old client: key_required) from a malformed one.
 */
export function checkKeyProof(body: unknown): { ok: true; value: KeyProof } | { ok: false; missing: boolean; message: string } {
  const b = body as Record<string, unknown>;
  if (b.publicKey === undefined || b.publicKey === null || b.proof === undefined || b.proof === null) {
    return { ok: false, missing: true, message: 'a registration needs "publicKey" and "proof" (GET /v1/challenge first)' };
  }
  const malformed = (message: string) => ({ ok: false as const, missing: false, message });
  const publicKey = fromBase64url(b.publicKey, X25519_KEY_BYTES);
  if (!publicKey) return malformed('publicKey must be 32 bytes in base64url without padding');
  if (typeof b.proof !== 'object' || Array.isArray(b.proof)) return malformed('proof must be an object {"challenge","mac"}');
  const p = b.proof as Record<string, unknown>;
  const challenge = fromBase64url(p.challenge, CHALLENGE_BYTES);
  if (!challenge) return malformed(`proof.challenge must be ${CHALLENGE_BYTES} bytes in base64url without padding`);
  const mac = fromBase64url(p.mac, MAC_BYTES);
  if (!mac) return malformed(`proof.mac must be ${MAC_BYTES} bytes in base64url without padding`);
  const signed: SignedFields = {
    name: b.name as string,
    port: b.port as number,
    ip: b.ip as string | null | undefined,
    addresses: b.addresses as string[] | null | undefined,
    publicKey: b.publicKey as string,
  };
  return { ok: true, value: { publicKey, challenge, mac, signed } };
}

export interface ListParams {
  limit: number;
  prefix: string;
  after: string | null;
}

export function checkListParams(q: URLSearchParams): Checked<ListParams> {
  const rawLimit = q.get('limit');
  let limit = DEFAULT_LIMIT;
  if (rawLimit !== null) {
    if (!/^\d{1,5}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > MAX_LIMIT) {
      return bad(`limit must be an integer from 1 to ${MAX_LIMIT}`);
    }
    limit = Number(rawLimit);
  }
  const prefix = q.get('prefix') ?? '';
  if (!isValidPrefix(prefix)) return bad('prefix must be up to 32 characters of letters, digits, ".", "_", "-"');
  const rawCursor = q.get('cursor');
  let after: string | null = null;
  if (rawCursor !== null && rawCursor !== '') {
    after = decodeCursor(rawCursor);
    if (after === null) return bad('cursor is not one this registry handed out');
  }
  return { ok: true, value: { limit, prefix: nameKey(prefix), after } };
}

/**
 * Cursors are opaque to clients: a versioned, base64url-wrapped key of the last peer listed, on a
 * Redis Cluster preceded by its shard (`<shard>:<key>`, the key empty at a shard's start).
 */
export function encodeCursor(afterKey: string): string {
  return Buffer.from(`c1:${afterKey}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string | null {
  if (cursor.length > 64 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith('c1:')) return null;
  const position = text.slice(3);
  const m = /^(\d{1,4}):(.*)$/.exec(position);
  const key = m ? m[2]! : position;
  if (m && key === '') return position;
  return isValidName(key) && key === nameKey(key) ? position : null;
}

/** The token of `Authorization: Bearer <token>`, or null when absent or not a bearer token. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer[ \t]+([A-Za-z0-9_-]{1,128})[ \t]*$/i.exec(header);
  return m ? m[1]! : null;
}

function bad<T>(message: string): Checked<T> {
  return { ok: false, message };
}
