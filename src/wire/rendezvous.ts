// Rendezvous frames (PROTOCOL.md 9): what peers and the registry exchange on the registry's UDP
// socket (keepalive, introduction), what peers send each other to open their NATs (PUNCH), and the
// RELAY envelope. Pure functions: no I/O; decoders never throw and answer null on any bad input.
//
// Every frame but RELAY is a clear frame (PROTOCOL.md 3.1: "PS" | version 2 | type | u32 field |
// body | CRC-32). Integers are big-endian. A candidate is `u8 family (4|6) | 4 or 16 address bytes
// | u16 port`; where a candidate may be absent, family 0 alone (1 byte) says "none". A name is
// `u8 length | UTF-8`. Macs are the first 16 bytes of HMAC-SHA256 over every byte before them,
// keyed with SHA-256 of the registration's token (rendezvousKey).
//
//   0x20 KEEPALIVE        peer→reg   0          name · u64 sequence · zero padding · mac (16)
//   0x21 KEEPALIVE_ACK    reg→peer   0          u64 sequence (echo) · observed candidate
//   0x22 INTRO_REQUEST    req→reg    request id owner name · u8 n · n host candidates · u16 token
//                                               length · token · zero padding (to 160 bytes)
//   0x23 INTRO_CHALLENGE  reg→req    request id u16 token length · token
//   0x24 INTRO_RESPONSE   reg→req    request id u8 status · owner candidate or none · u8 n · n host
//                                               candidates · u32 relay session · relay candidate or none
//   0x25 INTRO            reg→owner  0          u64 owner's sequence · requester candidate · u8 n ·
//                                               n host candidates · u32 relay session · nonce (8) · mac (16)
//   0x26 PUNCH            peer→peer  0          nonce (8)
//   0x27 RELAY            either     session    the inner datagram, whole (no CRC of its own)
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { normalizeIp } from '../core/addresses';
import { CLEAR_OVERHEAD, Envelope, FRAME_HEADER_BYTES, FRAME_MAGIC, FRAME_TRAILER_BYTES, MAX_DATAGRAM_BYTES, PROTOCOL_VERSION, decodeClearFrame, encodeClearFrame, writeCrc } from './frame';
import { addressBytes, formatAddress } from './stun';

/** The envelope type of each rendezvous frame (0x20–0x2f are rendezvous). */
export const RendezvousType = {
  keepalive: 0x20,
  keepaliveAck: 0x21,
  introRequest: 0x22,
  introChallenge: 0x23,
  introResponse: 0x24,
  intro: 0x25,
  punch: 0x26,
  relay: Envelope.relay,
} as const;

/** INTRO_RESPONSE status. */
export const IntroStatus = {
  ok: 0,
  /** No live registration by that name. */
  unknownOwner: 1,
  /** The owner keeps no UDP mapping alive (or the process holding it is gone). */
  noKeepalive: 2,
  /** Refused for now: this requester's introductions are over their limit, or the holder did not answer. */
  busy: 3,
} as const;
export type IntroStatus = (typeof IntroStatus)[keyof typeof IntroStatus];

export const RENDEZVOUS_MAC_BYTES = 16;
export const NONCE_BYTES = 8;
export const MAX_HOST_CANDIDATES = 8;
export const MAX_INTRO_TOKEN_BYTES = 48;
/** An INTRO_REQUEST is padded to at least this many bytes: every answer to it is no larger. */
export const INTRO_REQUEST_BYTES = 160;
/**
 * A KEEPALIVE is padded to at least this many bytes, so that its KEEPALIVE_ACK (39 bytes with an
 * IPv6 candidate) is never the larger, whatever the length of the name.
 */
export const KEEPALIVE_MIN_BYTES = 40;
/** RELAY's own header: "PS" | version | 0x27 | u32 session. */
export const RELAY_HEADER_BYTES = FRAME_HEADER_BYTES;
/** The largest datagram a relay carries: 1472 − 8 = 1464 bytes. */
export const MAX_RELAYED_BYTES = MAX_DATAGRAM_BYTES - RELAY_HEADER_BYTES;

/** A transport address: `ip` in its canonical spelling (IPv4-mapped IPv6 as IPv4). */
export interface Candidate {
  ip: string;
  port: number;
}

/** A frame's macced bytes and its mac, for verifyRendezvousMac. */
export interface Macced {
  /** Every byte of the datagram before the mac (a view). */
  signed: Buffer;
  mac: Buffer;
}

export interface Keepalive extends Macced {
  name: string;
  sequence: number;
}

export interface KeepaliveAck {
  sequence: number;
  observed: Candidate;
}

export interface IntroRequest {
  requestId: number;
  owner: string;
  /** The requester's host (LAN) candidates, at most MAX_HOST_CANDIDATES. */
  hosts: Candidate[];
  /** The token of an INTRO_CHALLENGE, or empty on the first try. */
  token: Buffer;
}

export interface IntroChallenge {
  requestId: number;
  token: Buffer;
}

export interface IntroResponse {
  requestId: number;
  status: IntroStatus;
  /** The owner's server-reflexive candidate (its kept-alive mapping); null unless status is ok. */
  owner: Candidate | null;
  /** The owner's host candidates (its registered LAN addresses at its registered port). */
  hosts: Candidate[];
  /** 0 = no relay offered. */
  relaySession: number;
  /** Where to send RELAY frames; null with a session = the address the INTRO_REQUEST was sent to. */
  relay: Candidate | null;
}

export interface Intro extends Macced {
  /** The sequence of the owner's last keepalive the registry accepted. */
  sequence: number;
  /** The requester's server-reflexive candidate (where its INTRO_REQUEST came from). */
  requester: Candidate;
  hosts: Candidate[];
  /** 0 = none; else RELAY frames with this id from the rendezvous address are the requester's. */
  relaySession: number;
  nonce: Buffer;
}

export interface Relay {
  session: number;
  /** The inner datagram (a view). */
  inner: Buffer;
}


/** The key of a registration's macs: SHA-256 of its token (the registry keeps exactly this hash). */
export function rendezvousKey(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The first 16 bytes of HMAC-SHA256(key, signed). */
export function rendezvousMac(key: Uint8Array, signed: Uint8Array): Buffer {
  return createHmac('sha256', key).update(signed).digest().subarray(0, RENDEZVOUS_MAC_BYTES);
}

/** True when `frame.mac` is the mac of `frame.signed` under `key` (constant time). */
export function verifyRendezvousMac(key: Uint8Array, frame: Macced): boolean {
  return frame.mac.length === RENDEZVOUS_MAC_BYTES && timingSafeEqual(rendezvousMac(key, frame.signed), frame.mac);
}

/**
 * The rendezvous type (0x20–0x2f) of a datagram that starts like one of our version-2 frames, else
 * null; a cheap test for dispatching, which checks no CRC.
 */
export function rendezvousTypeOf(datagram: Buffer): number | null {
  if (datagram.length < FRAME_HEADER_BYTES || datagram.readUInt16BE(0) !== FRAME_MAGIC || datagram[2] !== PROTOCOL_VERSION) return null;
  const type = datagram[3]!;
  return type >= 0x20 && type <= 0x2f ? type : null;
}

// ---------------------------------------------------------------------------------------------
// Writing

function candidateBytes(c: Candidate | null): Buffer {
  if (c === null) return Buffer.from([0]);
  const bytes = addressBytes(normalizeIp(c.ip));
  if (!bytes || !Number.isInteger(c.port) || c.port < 1 || c.port > 0xffff) throw new RangeError(`not a candidate: ${c.ip} port ${c.port}`);
  const out = Buffer.alloc(3 + bytes.length);
  out[0] = bytes.length === 4 ? 4 : 6;
  bytes.copy(out, 1);
  out.writeUInt16BE(c.port, 1 + bytes.length);
  return out;
}

/** Bytes of one candidate on the wire (family 0: 1). */
export function candidateSize(c: Candidate | null): number {
  return c === null ? 1 : addressBytes(normalizeIp(c.ip))?.length === 4 ? 7 : 19;
}

function candidateList(hosts: readonly Candidate[]): Buffer {
  if (hosts.length > MAX_HOST_CANDIDATES) throw new RangeError(`at most ${MAX_HOST_CANDIDATES} host candidates`);
  return Buffer.concat([Buffer.from([hosts.length]), ...hosts.map(candidateBytes)]);
}

function nameBytes(name: string): Buffer {
  const utf8 = Buffer.from(name, 'utf8');
  if (utf8.length < 1 || utf8.length > 255) throw new RangeError('a name is 1 to 255 bytes of UTF-8');
  return Buffer.concat([Buffer.from([utf8.length]), utf8]);
}

/** A u64 of at most 2^53 − 1 (PROTOCOL.md 1). */
function u64(v: number): Buffer {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError('a u64 here is an integer from 0 to 2^53 - 1');
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(v));
  return out;
}

function u32(v: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(v >>> 0);
  return out;
}

function tokenBytes(token: Uint8Array): Buffer {
  if (token.length > MAX_INTRO_TOKEN_BYTES) throw new RangeError(`a token is at most ${MAX_INTRO_TOKEN_BYTES} bytes`);
  const out = Buffer.alloc(2 + token.length);
  out.writeUInt16BE(token.length);
  out.set(token, 2);
  return out;
}

/** A clear frame whose last field is a mac over every byte before it (the CRC follows it). */
function maccedFrame(type: number, id: number, body: Buffer[], key: Uint8Array): Buffer {
  const frame = encodeClearFrame(type, id, [...body, Buffer.alloc(RENDEZVOUS_MAC_BYTES)]);
  const macAt = frame.length - FRAME_TRAILER_BYTES - RENDEZVOUS_MAC_BYTES;
  rendezvousMac(key, frame.subarray(0, macAt)).copy(frame, macAt);
  return writeCrc(frame);
}

/** KEEPALIVE, macced with rendezvousKey(token), padded to KEEPALIVE_MIN_BYTES. */
export function encodeKeepalive(k: { name: string; sequence: number }, key: Uint8Array): Buffer {
  const head = [nameBytes(k.name), u64(k.sequence)];
  const size = CLEAR_OVERHEAD + head[0]!.length + 8 + RENDEZVOUS_MAC_BYTES;
  return maccedFrame(RendezvousType.keepalive, 0, [...head, Buffer.alloc(Math.max(0, KEEPALIVE_MIN_BYTES - size))], key);
}

export function encodeKeepaliveAck(a: KeepaliveAck): Buffer {
  return encodeClearFrame(RendezvousType.keepaliveAck, 0, [u64(a.sequence), candidateBytes(a.observed)]);
}

/** INTRO_REQUEST, zero padded to INTRO_REQUEST_BYTES (larger only with many IPv6 candidates). */
export function encodeIntroRequest(r: IntroRequest): Buffer {
  const body = [nameBytes(r.owner), candidateList(r.hosts), tokenBytes(r.token)];
  const size = CLEAR_OVERHEAD + body.reduce((n, b) => n + b.length, 0);
  return encodeClearFrame(RendezvousType.introRequest, r.requestId, [...body, Buffer.alloc(Math.max(0, INTRO_REQUEST_BYTES - size))]);
}

export function encodeIntroChallenge(c: IntroChallenge): Buffer {
  return encodeClearFrame(RendezvousType.introChallenge, c.requestId, tokenBytes(c.token));
}

/**
 * INTRO_RESPONSE. With `maxBytes`, the host candidates that would make it larger are left out
 * (the registry answers no more bytes than the request had).
 */
export function encodeIntroResponse(r: IntroResponse, maxBytes = MAX_DATAGRAM_BYTES): Buffer {
  const fixed = CLEAR_OVERHEAD + 1 + candidateSize(r.owner) + 1 + 4 + candidateSize(r.relay);
  const hosts: Candidate[] = [];
  let size = fixed;
  for (const h of r.hosts.slice(0, MAX_HOST_CANDIDATES)) {
    if (size + candidateSize(h) > maxBytes) break;
    size += candidateSize(h);
    hosts.push(h);
  }
  return encodeClearFrame(RendezvousType.introResponse, r.requestId, [
    Buffer.from([r.status]), candidateBytes(r.owner), candidateList(hosts), u32(r.relaySession), candidateBytes(r.relay),
  ]);
}

/** INTRO, macced with the owner's rendezvousKey; `nonce` is 8 random bytes. */
export function encodeIntro(i: Omit<Intro, keyof Macced>, key: Uint8Array): Buffer {
  if (i.nonce.length !== NONCE_BYTES) throw new RangeError(`a nonce is ${NONCE_BYTES} bytes`);
  return maccedFrame(RendezvousType.intro, 0, [u64(i.sequence), candidateBytes(i.requester), candidateList(i.hosts), u32(i.relaySession), Buffer.from(i.nonce)], key);
}

export function encodePunch(nonce: Uint8Array): Buffer {
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`a nonce is ${NONCE_BYTES} bytes`);
  return encodeClearFrame(RendezvousType.punch, 0, nonce);
}

/** RELAY's 8-byte header alone ("PS" | version | 0x27 | relay session), for a sender that writes the inner datagram's parts after it. */
export function encodeRelayHeader(session: number): Buffer {
  const out = Buffer.allocUnsafe(RELAY_HEADER_BYTES);
  out.writeUInt16BE(FRAME_MAGIC, 0);
  out[2] = PROTOCOL_VERSION;
  out[3] = RendezvousType.relay;
  out.writeUInt32BE(session >>> 0, 4);
  return out;
}

/** RELAY: the 8-byte header, then `inner` unchanged (at most MAX_RELAYED_BYTES). */
export function encodeRelay(session: number, inner: Uint8Array): Buffer {
  if (inner.length > MAX_RELAYED_BYTES) throw new RangeError(`a relayed datagram is at most ${MAX_RELAYED_BYTES} bytes`);
  return Buffer.concat([encodeRelayHeader(session), inner]);
}

// ---------------------------------------------------------------------------------------------
// Reading

/** A cursor over a frame's body; every read returns null past the end instead of throwing. */
class Reader {
  at = 0;
  constructor(readonly buf: Buffer) {}

  get left(): number {
    return this.buf.length - this.at;
  }

  bytes(n: number): Buffer | null {
    if (n < 0 || this.left < n) return null;
    this.at += n;
    return this.buf.subarray(this.at - n, this.at);
  }

  u8(): number | null {
    const b = this.bytes(1);
    return b ? b[0]! : null;
  }

  u16(): number | null {
    const b = this.bytes(2);
    return b ? b.readUInt16BE(0) : null;
  }

  u32(): number | null {
    const b = this.bytes(4);
    return b ? b.readUInt32BE(0) : null;
  }

  /** Null past the end, and above 2^53 − 1 (malformed, PROTOCOL.md 1). */
  u64(): number | null {
    const b = this.bytes(8);
    const v = b ? b.readBigUInt64BE(0) : null;
    return v === null || v > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(v);
  }

  name(): string | null {
    const n = this.u8();
    const b = n ? this.bytes(n) : null;
    if (!b) return null;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      return null;
    }
  }

  /** A candidate; family 0 (none) only when `optional`. undefined on bad input. */
  candidate(optional: boolean): Candidate | null | undefined {
    const family = this.u8();
    if (family === 0 && optional) return null;
    if (family !== 4 && family !== 6) return undefined;
    const addr = this.bytes(family === 4 ? 4 : 16);
    const port = this.u16();
    if (!addr || !port) return undefined;
    return { ip: normalizeIp(formatAddress(addr)), port };
  }

  candidates(): Candidate[] | null {
    const n = this.u8();
    if (n === null || n > MAX_HOST_CANDIDATES) return null;
    const out: Candidate[] = [];
    for (let i = 0; i < n; i++) {
      const c = this.candidate(false);
      if (!c) return null;
      out.push(c);
    }
    return out;
  }

  token(): Buffer | null {
    const n = this.u16();
    return n === null || n > MAX_INTRO_TOKEN_BYTES ? null : this.bytes(n);
  }

  /** True when only zero bytes are left (padding), or only zeros and then `keep` more bytes. */
  zeros(keep = 0): boolean {
    for (let i = this.at; i < this.buf.length - keep; i++) if (this.buf[i] !== 0) return false;
    return true;
  }
}

/** The body of a version-2 clear frame of `type` with an intact CRC, else null. */
function clearBody(datagram: Buffer, type: number): { id: number; body: Reader } | null {
  const f = decodeClearFrame(datagram);
  if (typeof f === 'string' || f.version !== PROTOCOL_VERSION || f.type !== type) return null;
  return { id: f.id, body: new Reader(f.body) };
}

/** Splits off the mac that ends a macced frame's body. */
function macOf(datagram: Buffer, body: Reader): { signed: Buffer; mac: Buffer } | null {
  if (body.left < RENDEZVOUS_MAC_BYTES) return null;
  const macAt = datagram.length - FRAME_TRAILER_BYTES - RENDEZVOUS_MAC_BYTES;
  return { signed: datagram.subarray(0, macAt), mac: datagram.subarray(macAt, macAt + RENDEZVOUS_MAC_BYTES) };
}

export function decodeKeepalive(datagram: Buffer): Keepalive | null {
  const f = clearBody(datagram, RendezvousType.keepalive);
  if (!f || f.id !== 0) return null;
  const name = f.body.name();
  const sequence = f.body.u64();
  const m = macOf(datagram, f.body);
  return name === null || sequence === null || !m || !f.body.zeros(RENDEZVOUS_MAC_BYTES) ? null : { name, sequence, ...m };
}

export function decodeKeepaliveAck(datagram: Buffer): KeepaliveAck | null {
  const f = clearBody(datagram, RendezvousType.keepaliveAck);
  if (!f || f.id !== 0) return null;
  const sequence = f.body.u64();
  const observed = f.body.candidate(false);
  return sequence === null || !observed || !f.body.zeros() ? null : { sequence, observed };
}

export function decodeIntroRequest(datagram: Buffer): IntroRequest | null {
  const f = clearBody(datagram, RendezvousType.introRequest);
  if (!f) return null;
  const owner = f.body.name();
  const hosts = f.body.candidates();
  const token = f.body.token();
  return owner === null || !hosts || !token || !f.body.zeros() ? null : { requestId: f.id, owner, hosts, token };
}

export function decodeIntroChallenge(datagram: Buffer): IntroChallenge | null {
  const f = clearBody(datagram, RendezvousType.introChallenge);
  if (!f) return null;
  const token = f.body.token();
  return !token || f.body.left !== 0 ? null : { requestId: f.id, token };
}

export function decodeIntroResponse(datagram: Buffer): IntroResponse | null {
  const f = clearBody(datagram, RendezvousType.introResponse);
  if (!f) return null;
  const status = f.body.u8();
  const owner = f.body.candidate(true);
  const hosts = f.body.candidates();
  const relaySession = f.body.u32();
  const relay = f.body.candidate(true);
  if (status === null || status > IntroStatus.busy || owner === undefined || !hosts || relaySession === null || relay === undefined || f.body.left !== 0) return null;
  return { requestId: f.id, status: status as IntroStatus, owner, hosts, relaySession, relay };
}

export function decodeIntro(datagram: Buffer): Intro | null {
  const f = clearBody(datagram, RendezvousType.intro);
  if (!f || f.id !== 0) return null;
  const sequence = f.body.u64();
  const requester = f.body.candidate(false);
  const hosts = f.body.candidates();
  const relaySession = f.body.u32();
  const nonce = f.body.bytes(NONCE_BYTES);
  const m = macOf(datagram, f.body);
  if (sequence === null || !requester || !hosts || relaySession === null || !nonce || !m || f.body.left !== RENDEZVOUS_MAC_BYTES) return null;
  return { sequence, requester, hosts, relaySession, nonce, ...m };
}

export function decodePunch(datagram: Buffer): { nonce: Buffer } | null {
  const f = clearBody(datagram, RendezvousType.punch);
  if (!f || f.id !== 0) return null;
  const nonce = f.body.bytes(NONCE_BYTES);
  return nonce && f.body.left === 0 ? { nonce } : null;
}

/** A RELAY frame: session 0 and empty inner datagrams are refused. */
export function decodeRelay(datagram: Buffer): Relay | null {
  if (datagram.length <= RELAY_HEADER_BYTES || datagram.length > MAX_DATAGRAM_BYTES) return null;
  if (rendezvousTypeOf(datagram) !== RendezvousType.relay) return null;
  const session = datagram.readUInt32BE(4);
  return session === 0 ? null : { session, inner: datagram.subarray(RELAY_HEADER_BYTES) };
}
