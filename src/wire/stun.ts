// STUN (RFC 8489) message codec for the registry's Binding service: pure functions, no I/O.
// Decoding never throws: anything malformed comes back as { ok: false, reason }.
//
// Policy for requests without the magic cookie (RFC 3489 clients, which the registry serves too):
// they are answered the way RFC 5389 section 12.2 asks (RFC 8489 section 11 keeps it), with
// MAPPED-ADDRESS (not XOR-MAPPED-ADDRESS, which such clients do not
// know), the request's 128-bit transaction id echoed, SOFTWARE, and no FINGERPRINT (which RFC 3489
// does not define). A CHANGE-REQUEST with no change flag set is understood (old clients always send
// one); a CHANGE-REQUEST that asks for another address or port cannot be honoured by a server with
// a single address, so it counts as an unknown attribute (see classifyRequest).
import { isIPv4, isIPv6 } from 'node:net';
import { crc32 } from 'node:zlib';

export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_BYTES = 20;
const FINGERPRINT_XOR = 0x5354554e;

export const StunClass = { request: 0, indication: 1, success: 2, error: 3 } as const;
export const BINDING_METHOD = 0x001;

export const Attr = {
  MAPPED_ADDRESS: 0x0001,
  RESPONSE_ADDRESS: 0x0002,
  CHANGE_REQUEST: 0x0003,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  REALM: 0x0014,
  NONCE: 0x0015,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  PASSWORD_ALGORITHM: 0x001d,
  USERHASH: 0x001e,
  XOR_MAPPED_ADDRESS: 0x0020,
  PRIORITY: 0x0024,
  USE_CANDIDATE: 0x0025,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
} as const;

/**
 * Comprehension-required attributes (type < 0x8000) this server understands in a Binding request:
 * it has no credentials and is not an ICE agent, so it reads them and ignores their content, which
 * is what RFC 8489 lets a server without authentication do. CHANGE-REQUEST is handled apart.
 */
const UNDERSTOOD_REQUIRED = new Set<number>([
  Attr.MAPPED_ADDRESS,
  Attr.USERNAME,
  Attr.MESSAGE_INTEGRITY,
  Attr.ERROR_CODE,
  Attr.UNKNOWN_ATTRIBUTES,
  Attr.REALM,
  Attr.NONCE,
  Attr.MESSAGE_INTEGRITY_SHA256,
  Attr.PASSWORD_ALGORITHM,
  Attr.USERHASH,
  Attr.XOR_MAPPED_ADDRESS,
  Attr.PRIORITY,
  Attr.USE_CANDIDATE,
]);

export interface StunAttribute {
  type: number;
  value: Buffer;
}

export interface StunMessage {
  /** 12 bits. */
  method: number;
  /** 0 request, 1 indication, 2 success response, 3 error response. */
  cls: number;
  /** True when the magic cookie is absent: an RFC 3489 message with a 128-bit transaction id. */
  legacy: boolean;
  /** 12 bytes (RFC 8489), or 16 bytes for a legacy message (cookie field included). */
  transactionId: Buffer;
  /** Attributes in order, MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT included. */
  attributes: StunAttribute[];
  /** Attributes after MESSAGE-INTEGRITY that the RFC says to ignore (not in `attributes`). */
  ignoredAfterIntegrity: number;
  /** 'valid' when a FINGERPRINT is present (and checked: a wrong one fails decoding). */
  fingerprint: 'absent' | 'valid';
}

/** Why a datagram is not a usable message: 'fingerprint' when only its FINGERPRINT is wrong. */
export type DecodeFailure = 'malformed' | 'fingerprint';
export type DecodeResult = { ok: true; message: StunMessage } | { ok: false; reason: string; failure: DecodeFailure };

export interface TransportAddress {
  family: 4 | 6;
  address: string;
  port: number;
}

function fail(reason: string, failure: DecodeFailure = 'malformed'): DecodeResult {
  return { ok: false, reason, failure };
}

/** Message type field -> method and class (RFC 8489 section 5: class bits are interleaved). */
export function splitType(type: number): { method: number; cls: number } {
  const cls = ((type >> 7) & 0b10) | ((type >> 4) & 0b01);
  const method = (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80);
  return { method, cls };
}

export function joinType(method: number, cls: number): number {
  return (
    (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((cls & 0b01) << 4) | ((cls & 0b10) << 7)
  );
}

/** CRC-32 of `bytes` XOR 0x5354554e, as FINGERPRINT carries it. */
export function fingerprintOf(bytes: Uint8Array): number {
  return (crc32(bytes) ^ FINGERPRINT_XOR) >>> 0;
}

/** Decodes one STUN message (one whole UDP datagram). Never throws. */
export function decodeStunMessage(input: Uint8Array): DecodeResult {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (buf.length < HEADER_BYTES) return fail('shorter than a STUN header');
  const type = buf.readUInt16BE(0);
  if (type & 0xc000) return fail('top two bits of the type are not zero');
  const length = buf.readUInt16BE(2);
  if (length % 4 !== 0) return fail('message length is not a multiple of 4');
  if (HEADER_BYTES + length !== buf.length) return fail('message length does not match the datagram');
  const legacy = buf.readUInt32BE(4) !== MAGIC_COOKIE;
  const transactionId = Buffer.from(buf.subarray(legacy ? 4 : 8, HEADER_BYTES));
  const { method, cls } = splitType(type);

  const attributes: StunAttribute[] = [];
  let ignoredAfterIntegrity = 0;
  let afterIntegrity = false;
  let fingerprint: StunMessage['fingerprint'] = 'absent';
  let at = HEADER_BYTES;
  while (at < buf.length) {
    if (fingerprint !== 'absent') return fail('an attribute follows FINGERPRINT');
    if (buf.length - at < 4) return fail('truncated attribute header');
    const attrType = buf.readUInt16BE(at);
    const attrLength = buf.readUInt16BE(at + 2);
    const padded = (attrLength + 3) & ~3;
    if (padded > buf.length - at - 4) return fail(`attribute 0x${attrType.toString(16)} overruns the message`);
    const value = Buffer.from(buf.subarray(at + 4, at + 4 + attrLength));
    if (attrType === Attr.FINGERPRINT) {
      if (legacy) return fail('FINGERPRINT in a message without the magic cookie');
      if (attrLength !== 4) return fail('FINGERPRINT is not 4 bytes');
      if (value.readUInt32BE(0) !== fingerprintOf(buf.subarray(0, at))) return fail('FINGERPRINT does not match', 'fingerprint');
      fingerprint = 'valid';
      attributes.push({ type: attrType, value });
    } else if (afterIntegrity && attrType !== Attr.MESSAGE_INTEGRITY_SHA256) {
      ignoredAfterIntegrity++;
    } else {
      attributes.push({ type: attrType, value });
      if (attrType === Attr.MESSAGE_INTEGRITY || attrType === Attr.MESSAGE_INTEGRITY_SHA256) afterIntegrity = true;
    }
    at += 4 + padded;
  }
  return { ok: true, message: { method, cls, legacy, transactionId, attributes, ignoredAfterIntegrity, fingerprint } };
}

export type RequestVerdict =
  | { kind: 'binding'; message: StunMessage }
  /** A Binding request carrying comprehension-required attributes this server does not understand. */
  | { kind: 'unknown-attributes'; message: StunMessage; unknown: number[] }
  | { kind: 'drop'; reason: string; category: DropCategory };

/** Coarse drop reasons, for counters (the free-text `reason` is for debugging). */
export type DropCategory = DecodeFailure | 'not_binding_request';

/** What the server should do with one datagram. Pure; never throws. */
export function classifyRequest(datagram: Uint8Array): RequestVerdict {
  const decoded = decodeStunMessage(datagram);
  if (!decoded.ok) return { kind: 'drop', reason: decoded.reason, category: decoded.failure };
  const message = decoded.message;
  if (message.method !== BINDING_METHOD) {
    return { kind: 'drop', reason: `method 0x${message.method.toString(16)} is not Binding`, category: 'not_binding_request' };
  }
  if (message.cls !== StunClass.request) return { kind: 'drop', reason: 'not a request', category: 'not_binding_request' };
  const unknown: number[] = [];
  for (const a of message.attributes) {
    if (a.type >= 0x8000 || UNDERSTOOD_REQUIRED.has(a.type)) continue;
    if (a.type === Attr.CHANGE_REQUEST && a.value.length === 4 && (a.value.readUInt32BE(0) & 0b110) === 0) continue;
    if (!unknown.includes(a.type)) unknown.push(a.type);
  }
  return unknown.length > 0 ? { kind: 'unknown-attributes', message, unknown } : { kind: 'binding', message };
}

// ---- encoding ----

function attribute(type: number, value: Buffer): Buffer {
  const padded = (value.length + 3) & ~3;
  const out = Buffer.alloc(4 + padded); // padding bytes are zero (RFC 8489 section 14)
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

/** Parses an IPv4 or IPv6 textual address to bytes; null when it is neither. Pure. */
export function addressBytes(address: string): Buffer | null {
  const bare = address.replace(/%.*$/, ''); // an IPv6 zone id is local to this host
  if (isIPv4(bare)) return Buffer.from(bare.split('.').map(Number));
  if (!isIPv6(bare)) return null;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes its two hex groups.
  const text = bare.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a, b, c, d) =>
    `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`,
  );
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const left = groups(head);
  const right = groups(rest ?? '');
  const all = rest === undefined ? left : [...left, ...Array<number>(Math.max(8 - left.length - right.length, 0)).fill(0), ...right];
  if (all.length !== 8) return null;
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** Formats 4 or 16 address bytes the way inet_ntop does (RFC 5952 for IPv6). */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${Array.from(bytes.subarray(12)).join('.')}`;
  }
  let best = -1;
  let bestLen = 1; // a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** An IPv4-mapped IPv6 source (a dual-stack socket) is reported as the IPv4 address it is. */
export function normalizeSource(address: string, port: number): TransportAddress | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const bare = mapped ? mapped[1]! : address.replace(/%.*$/, '');
  const bytes = addressBytes(bare);
  if (!bytes || !Number.isInteger(port) || port < 0 || port > 0xffff) return null;
  return { family: bytes.length === 4 ? 4 : 6, address: formatAddress(bytes), port };
}

function addressValue(to: TransportAddress, xorWith: Buffer | null): Buffer {
  const bytes = addressBytes(to.address);
  if (!bytes || (bytes.length === 4) !== (to.family === 4)) throw new Error(`not an IPv${to.family} address: ${to.address}`);
  const value = Buffer.alloc(4 + bytes.length);
  value[1] = to.family === 4 ? 0x01 : 0x02;
  value.writeUInt16BE(xorWith ? (to.port ^ (MAGIC_COOKIE >>> 16)) & 0xffff : to.port, 2);
  for (let i = 0; i < bytes.length; i++) value[4 + i] = xorWith ? bytes[i]! ^ xorWith[i]! : bytes[i]!;
  return value;
}

/** Cookie then transaction id: what X-Address is XORed with (only the first 4 bytes for IPv4). */
function xorKey(transactionId: Buffer): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(MAGIC_COOKIE, 0);
  transactionId.copy(key, 4, 0, 12);
  return key;
}

/**
 * Reads a MAPPED-ADDRESS or XOR-MAPPED-ADDRESS value (pass the transaction id for the XOR form).
 * Null when malformed.
 */
export function decodeAddress(value: Buffer, transactionId?: Buffer): TransportAddress | null {
  if (value.length < 4) return null;
  const family = value[1] === 0x01 ? 4 : value[1] === 0x02 ? 6 : 0;
  if (family === 0 || value.length !== (family === 4 ? 8 : 20)) return null;
  const key = transactionId ? xorKey(transactionId) : null;
  const port = key ? value.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16) : value.readUInt16BE(2);
  const bytes = Buffer.from(value.subarray(4));
  if (key) for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i]! ^ key[i]!;
  return { family, address: formatAddress(bytes), port };
}

function header(type: number, bodyLength: number, request: StunMessage): Buffer {
  const out = Buffer.alloc(HEADER_BYTES);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(bodyLength, 2);
  if (request.legacy) {
    request.transactionId.copy(out, 4, 0, 16);
  } else {
    out.writeUInt32BE(MAGIC_COOKIE, 4);
    request.transactionId.copy(out, 8, 0, 12);
  }
  return out;
}

/** Header + attributes, with FINGERPRINT appended unless the request was legacy. */
function finish(type: number, request: StunMessage, attrs: Buffer[]): Buffer {
  const body = Buffer.concat(attrs);
  if (request.legacy) return Buffer.concat([header(type, body.length, request), body]);
  const withoutFp = Buffer.concat([header(type, body.length + 8, request), body]);
  const fp = Buffer.alloc(4);
  fp.writeUInt32BE(fingerprintOf(withoutFp), 0);
  return Buffer.concat([withoutFp, attribute(Attr.FINGERPRINT, fp)]);
}

function softwareAttr(software: string): Buffer {
  // SOFTWARE is at most 763 bytes (RFC 8489 section 14.14); ours is short, but keep the bound.
  return attribute(Attr.SOFTWARE, Buffer.from(software, 'utf8').subarray(0, 763));
}

/**
 * A Binding success response to `request` telling the client `mapped` (where its request came
 * from): XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, SOFTWARE, FINGERPRINT; for a legacy request
 * MAPPED-ADDRESS and SOFTWARE only. Throws only on a `mapped` that is not an IP address.
 */
export function encodeBindingSuccess(request: StunMessage, mapped: TransportAddress, software: string): Buffer {
  const attrs = request.legacy
    ? [attribute(Attr.MAPPED_ADDRESS, addressValue(mapped, null)), softwareAttr(software)]
    : [
        attribute(Attr.XOR_MAPPED_ADDRESS, addressValue(mapped, xorKey(request.transactionId))),
        attribute(Attr.MAPPED_ADDRESS, addressValue(mapped, null)),
        softwareAttr(software),
      ];
  return finish(joinType(BINDING_METHOD, StunClass.success), request, attrs);
}

/** The 420 error response RFC 8489 section 6.3.1 asks for, listing (at most 8 of) the unknown types. */
export function encodeUnknownAttributes(request: StunMessage, unknown: number[], software: string): Buffer {
  const reason = Buffer.from('Unknown Attribute', 'utf8');
  const errorCode = Buffer.alloc(4 + reason.length);
  errorCode[2] = 4; // class: hundreds
  errorCode[3] = 20; // number
  reason.copy(errorCode, 4);
  const listed = unknown.slice(0, 8);
  const types = Buffer.alloc(listed.length * 2);
  listed.forEach((t, i) => types.writeUInt16BE(t, i * 2));
  return finish(
    joinType(BINDING_METHOD, StunClass.error),
    request,
    [attribute(Attr.ERROR_CODE, errorCode), attribute(Attr.UNKNOWN_ATTRIBUTES, types), softwareAttr(software)],
  );
}

/** A Binding request (for clients and tests): 20 bytes, or 28 with a FINGERPRINT. */
export function encodeBindingRequest(transactionId: Buffer, opts: { fingerprint?: boolean; software?: string } = {}): Buffer {
  if (transactionId.length !== 12) throw new Error('a transaction id is 12 bytes');
  const request: StunMessage = {
    method: BINDING_METHOD,
    cls: StunClass.request,
    legacy: false,
    transactionId,
    attributes: [],
    ignoredAfterIntegrity: 0,
    fingerprint: 'absent',
  };
  const attrs = opts.software ? [softwareAttr(opts.software)] : [];
  const type = joinType(BINDING_METHOD, StunClass.request);
  if (opts.fingerprint) return finish(type, request, attrs);
  const body = Buffer.concat(attrs);
  return Buffer.concat([header(type, body.length, request), body]);
}
