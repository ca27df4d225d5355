// Both sides of the handshake (PROTOCOL.md 3.4): the responder's checks in their cheap-first
// order (mac1, load and cookie, per-address rate, Noise, timestamp replay) and the initiator's
// fresh tries, cookie and answers. The Endpoint owns the socket and the connection table; this
// module decides what a handshake frame means and what, if anything, to answer.
import { randomInt } from 'node:crypto';
import { TokenBuckets } from '../core/token-bucket';
import type { PrivateKey } from '../core/x25519';
import { CookieSecrets, cookieReplyKey, mac, mac1Key, openCookie, sealCookie, verifyMac, COOKIE_SECRET_MS } from '../crypto/cookie';
import { HandshakeState } from '../crypto/noise';
import { timestamp, TimestampReplayGuard } from '../crypto/timestamp';
import { PROTOCOL_VERSION, type ClearFrame } from '../wire/frame';
import { decodeCookieReply, decodeInit, decodeResp, encodeCookieReply, encodeInit, encodeResp, initMacInputs, MAC_BYTES } from '../wire/handshake';
import { sameRemote, type Remote, type SessionKeys } from './connection';

/** The prologue of every handshake with the owner `name` (PROTOCOL.md 3.4): version and name. */
export function prologueFor(ownerName: string): Buffer {
  return Buffer.from(`p2pshare/${PROTOCOL_VERSION} ${ownerName.toLowerCase()}`, 'utf8');
}

export interface HandshakeLimits {
  /** Handshakes processed per second in all before the responder asks for cookies, and the burst. */
  perSecond: number;
  burst: number;
  /** Half-open connections beyond which the responder asks for cookies. */
  maxHalfOpen: number;
  /** Under load, INITs with a valid cookie processed per second per source IP, and the burst. */
  perAddressPerSecond: number;
  perAddressBurst: number;
}

export const DEFAULT_HANDSHAKE_LIMITS: HandshakeLimits = {
  perSecond: 100,
  burst: 100,
  maxHalfOpen: 256,
  perAddressPerSecond: 10,
  perAddressBurst: 20,
};

/** What the responder made of an INIT. */
export type InitOutcome =
  | { accept: { keys: SessionKeys; initiatorIndex: number }; reply: (localIndex: number) => Buffer }
  | { cookie: Buffer }
  | { drop: 'bad_mac' | 'rate_limited' | 'bad_handshake' | 'replayed' | 'rejected' };

export class Responder {
  private readonly mac1Key: Buffer;
  private readonly cookieKey: Buffer;
  private readonly cookies = new CookieSecrets();
  private readonly timestamps = new TimestampReplayGuard();
  private readonly all: TokenBuckets;
  private readonly perAddress: TokenBuckets;
  private readonly prologue: Buffer;

  constructor(
    private readonly identity: PrivateKey,
    ownerName: string,
    private readonly limits: HandshakeLimits = DEFAULT_HANDSHAKE_LIMITS,
  ) {
    this.mac1Key = mac1Key(identity.publicKey);
    this.cookieKey = cookieReplyKey(identity.publicKey);
    this.prologue = prologueFor(ownerName);
    this.all = new TokenBuckets({ perSecond: limits.perSecond, burst: limits.burst, maxKeys: 1 });
    this.perAddress = new TokenBuckets({ perSecond: limits.perAddressPerSecond, burst: limits.perAddressBurst, maxKeys: 4096 });
  }

  /** Judges one INIT (its CRC already checked). `halfOpen` is the number of connections not yet validated. */
  onInit(datagram: Buffer, frame: ClearFrame, from: Remote, halfOpen: number): InitOutcome {
    const init = decodeInit(frame);
    if (!init || init.senderIndex === 0) return { drop: 'rejected' };
    const { beforeMac1, beforeMac2 } = initMacInputs(datagram);
    // A hash before any Diffie-Hellman: junk, and INITs meant for another key, cost little.
    if (!verifyMac(this.mac1Key, beforeMac1, init.mac1)) return { drop: 'bad_mac' };
    const underLoad = this.all.available('') < 1 || halfOpen >= this.limits.maxHalfOpen;
    if (underLoad) {
      // Under load only an INIT proving its address (mac2 = its cookie) is worked on; the rest
      // gets a cookie and leaves no state behind (PROTOCOL.md 3.4, "Cookies").
      if (!this.cookies.checkMac2(from.address, from.port, beforeMac2, init.mac2)) {
        return { cookie: encodeCookieReply(init.senderIndex, sealCookie(this.cookieKey, this.cookies.cookie(from.address, from.port), init.mac1)) };
      }
      if (this.perAddress.take(from.address) > 0) return { drop: 'rate_limited' };
    }
    this.all.take('');
    const hs = HandshakeState.responder({ prologue: this.prologue, staticKey: this.identity });
    const payload = hs.readMessage(init.msg1);
    if (!payload) return { drop: 'bad_handshake' };
    // A replayed INIT starts nothing and gets no answer (PROTOCOL.md 3.4, "Replays").
    if (!this.timestamps.accept(hs.remoteStatic!, payload)) return { drop: 'replayed' };
    let msg2: Buffer;
    try {
      msg2 = hs.writeMessage();
    } catch {
      return { drop: 'bad_handshake' };
    }
    const keys = hs.split();
    return {
      accept: { keys, initiatorIndex: init.senderIndex },
      reply: (localIndex) => encodeResp(localIndex, init.senderIndex, msg2),
    };
  }
}

/** One try of the initiator: the state to read the answer with. */
interface Try {
  hs: HandshakeState;
  mac1: Buffer;
  /** Where its INIT went (every candidate address of the owner). */
  remotes: Remote[];
  peerKey: Buffer;
  onCookie: () => void;
  /** The answer's source is the path the connection takes (the candidate that got through). */
  onKeys: (keys: SessionKeys, responderIndex: number, from: Remote) => void;
}

/** The initiator's open tries by their index, and the cookies responders handed out. */
export class Initiator {
  private readonly tries = new Map<number, Try>();
  private readonly cookies = new Map<string, { cookie: Buffer; until: number }>();

  constructor(private readonly identity: PrivateKey) {}

  /**
   * A fresh INIT for the owner at `remotes` (new index, ephemeral key and timestamp) and the
   * index it waits on. The answer calls `onKeys`; a COOKIE_REPLY stores the cookie (per owner
   * key: it proves our one socket's address, whichever candidate carried it) and calls `onCookie`.
   */
  start(o: { remotes: Remote[]; peerKey: Buffer; ownerName: string; isIndexFree: (i: number) => boolean; onKeys: Try['onKeys']; onCookie: () => void }): { index: number; datagram: Buffer } {
    let index: number;
    do index = randomInt(1, 0x1_0000_0000);
    while (this.tries.has(index) || !o.isIndexFree(index));
    const hs = HandshakeState.initiator({ prologue: prologueFor(o.ownerName), staticKey: this.identity, remoteStatic: o.peerKey });
    const msg1 = hs.writeMessage(timestamp());
    const cookie = this.cookieFor(o.peerKey);
    let mac1: Buffer = Buffer.alloc(0);
    const datagram = encodeInit(index, msg1, {
      mac1: (before) => (mac1 = mac(mac1Key(o.peerKey), before)),
      mac2: (before) => (cookie ? mac(cookie, before) : Buffer.alloc(MAC_BYTES)),
    });
    this.tries.set(index, { hs, mac1, remotes: o.remotes, peerKey: o.peerKey, onCookie: o.onCookie, onKeys: o.onKeys });
    return { index, datagram };
  }

  /** The try is over (answered, superseded or given up): its index takes no more answers. */
  end(index: number): void {
    this.tries.delete(index);
  }

  /** A HANDSHAKE_RESP from `from`: false when it answers no try of ours or does not authenticate. */
  onResp(frame: ClearFrame, from: Remote): boolean {
    const resp = decodeResp(frame);
    const t = resp && this.tries.get(resp.receiverIndex);
    if (!t || resp.senderIndex === 0) return false;
    this.tries.delete(resp.receiverIndex);
    if (!t.hs.readMessage(resp.msg2)) return false; // not the owner we meant: the try's timer goes on
    t.onKeys(t.hs.split(), resp.senderIndex, from);
    return true;
  }

  /** A COOKIE_REPLY: false when it answers no try of ours or is not sealed for that try's mac1. */
  onCookieReply(frame: ClearFrame): boolean {
    const reply = decodeCookieReply(frame);
    const t = reply && this.tries.get(reply.receiverIndex);
    if (!t) return false;
    const cookie = openCookie(cookieReplyKey(t.peerKey), reply.sealedCookie, t.mac1);
    if (!cookie) return false;
    this.tries.delete(reply.receiverIndex);
    this.cookies.set(t.peerKey.toString('hex'), { cookie, until: performance.now() + COOKIE_SECRET_MS });
    t.onCookie();
    return true;
  }

  /** Is `index` a try of ours (a VERSION_NOT_SUPPORTED echoes it)? */
  has(index: number): boolean {
    return this.tries.has(index);
  }

  /** Did the try `index` send its INIT to `from` (a VERSION_NOT_SUPPORTED must come from there)? */
  sentTo(index: number, from: Remote): boolean {
    return this.tries.get(index)?.remotes.some((r) => sameRemote(r, from)) ?? false;
  }

  private cookieFor(peerKey: Buffer): Buffer | undefined {
    const key = peerKey.toString('hex');
    const c = this.cookies.get(key);
    if (c && c.until > performance.now()) return c.cookie;
    this.cookies.delete(key);
    return undefined;
  }
}
