// The registry's relay (README.md, "Rendezvous"): sessions opened at an introduction, each with two
// legs (the owner's kept-alive mapping, the requester's validated source), forwarding RELAY frames
// from one leg to the other unchanged. Caps: sessions held, bytes per second per session and in
// all (token buckets; a datagram over them is dropped), bytes per session in all (the session then
// ends), and idle sessions forgotten. No socket here: forward() says where a frame goes.
import { randomBytes } from 'node:crypto';
import { TokenBuckets } from '../core/token-bucket';
import { MAX_DATAGRAM_BYTES } from '../wire/frame';
import type { Endpoint } from './store';

export interface RelayLimits {
  /** Sessions held at once by this process; past it an introduction offers no relay. */
  maxSessions: number;
  /** Bytes a second one session may forward (both directions together). */
  sessionBytesPerSecond: number;
  /** Bytes one session may forward in all; the frame that would pass it ends the session. */
  sessionBytes: number;
  /** Bytes a second all sessions together may forward. */
  totalBytesPerSecond: number;
  /** A session that forwarded nothing for this long is forgotten. */
  idleMs: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  maxSessions: 64,
  sessionBytesPerSecond: 8 * MiB,
  sessionBytes: 2048 * MiB,
  totalBytesPerSecond: 200 * MiB,
  idleMs: 60_000,
};

/** What became of a relay session or a RELAY frame (for /metrics). */
export const RELAY_EVENTS = [
  'relay_opened', 'relay_refused_full', 'relay_closed_idle', 'relay_closed_bytes',
  'relay_forwarded', 'relay_dropped_unknown', 'relay_dropped_stranger', 'relay_dropped_early',
  'relay_dropped_rate', 'relay_dropped_total_rate',
] as const;
export type RelayEvent = (typeof RELAY_EVENTS)[number];

/** A requester's leg: its port is null until its first frame when it was introduced by another process. */
export interface RequesterLeg {
  ip: string;
  port: number | null;
}

interface Session {
  id: number;
  ownerKey: string;
  owner: Endpoint;
  requester: RequesterLeg;
  bytes: number;
  lastActive: number;
}

/** A rate's burst: a quarter second of it, and never less than one datagram. */
function burstOf(perSecond: number): number {
  return Math.max(MAX_DATAGRAM_BYTES, Math.floor(perSecond / 4));
}

const same = (a: Endpoint, ip: string, port: number) => a.ip === ip && a.port === port;

export class RelaySessions {
  private readonly sessions = new Map<number, Session>();
  private readonly perSession: TokenBuckets;
  private readonly total: TokenBuckets;
  private readonly sweeper: NodeJS.Timeout;
  /** Bytes forwarded since start. */
  bytesForwarded = 0;

  constructor(
    readonly limits: RelayLimits,
    private readonly count: (e: RelayEvent) => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    const rate = limits.sessionBytesPerSecond;
    // Ended sessions leave their bucket behind until the LRU drops it (the oldest first): room for both.
    this.perSession = new TokenBuckets({ perSecond: rate, burst: burstOf(rate), maxKeys: 2 * limits.maxSessions + 1, now });
    this.total = new TokenBuckets({ perSecond: limits.totalBytesPerSecond, burst: burstOf(limits.totalBytesPerSecond), now });
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, Math.max(50, limits.idleMs / 4))).unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Opens a session between the owner's mapping and the requester; its id, or 0 when full. */
  open(ownerKey: string, owner: Endpoint, requester: RequesterLeg): number {
    this.sweep();
    if (this.sessions.size >= this.limits.maxSessions) {
      this.count('relay_refused_full');
      return 0;
    }
    let id = 0;
    while (id === 0 || this.sessions.has(id)) id = randomBytes(4).readUInt32BE(0);
    this.sessions.set(id, { id, ownerKey, owner: { ...owner }, requester: { ...requester }, bytes: 0, lastActive: this.now() });
    this.count('relay_opened');
    return id;
  }

  /**
   * Where a RELAY frame of `size` bytes for `session` from `from` goes: the other leg, or null
   * (dropped and counted: unknown session, a third address, over a cap).
   */
  forward(session: number, from: Endpoint, size: number): Endpoint | null {
    const s = this.sessions.get(session);
    if (!s) {
      this.count('relay_dropped_unknown');
      return null;
    }
    let to: Endpoint;
    if (same(s.owner, from.ip, from.port)) {
      if (s.requester.port === null) {
        this.count('relay_dropped_early');
        return null;
      }
      to = { ip: s.requester.ip, port: s.requester.port };
    } else if (s.requester.ip === from.ip && (s.requester.port === null || s.requester.port === from.port)) {
      s.requester.port = from.port; // learnt from its first frame when another process introduced it
      to = s.owner;
    } else {
      this.count('relay_dropped_stranger');
      return null;
    }
    const now = this.now();
    if (s.bytes + size > this.limits.sessionBytes) {
      this.end(s, 'relay_closed_bytes');
      return null;
    }
    if (this.perSession.take(String(s.id), now, size) > 0) {
      this.count('relay_dropped_rate');
      return null;
    }
    if (this.total.take('all', now, size) > 0) {
      this.count('relay_dropped_total_rate');
      return null;
    }
    s.bytes += size;
    s.lastActive = now;
    this.bytesForwarded += size;
    this.count('relay_forwarded');
    return { ...to };
  }

  /** The owner's kept-alive mapping moved: its sessions follow it. */
  moveOwner(ownerKey: string, to: Endpoint): void {
    for (const s of this.sessions.values()) if (s.ownerKey === ownerKey) s.owner = { ...to };
  }

  /** Forgets the sessions idle for longer than limits.idleMs. */
  sweep(now = this.now()): void {
    for (const s of this.sessions.values()) if (now - s.lastActive > this.limits.idleMs) this.end(s, 'relay_closed_idle');
  }

  private end(s: Session, why: RelayEvent): void {
    this.sessions.delete(s.id);
    this.count(why);
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sessions.clear();
  }
}
