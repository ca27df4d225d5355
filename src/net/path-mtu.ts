// Packetization-layer path MTU discovery (RFC 8899, DPLPMTUD) for one connection (PROTOCOL.md
// 6.10): padded path challenges of a ladder of datagram sizes, all sent at once right after the
// handshake, each answered by the other side with a path response of the same size. A probe not
// answered in time is sent again, at most MAX_PROBES times, then its size counts as not fitting.
// The result is the largest size such that it and every smaller size on the ladder had an answer
// of their own: the first answer dropped by a router for its size brings an ICMP that makes the
// owner's kernel fragment larger answers (Node cannot set DF), and those arrive whole, so an
// answer above a size that failed proves nothing. Below the result stays the base size, which
// needs no probe. Every wait is bounded.
import { isLocalAddress } from '../core/addresses';
import { LOCAL_MAX_DATAGRAM_BYTES, MAX_DATAGRAM_BYTES } from '../wire/frame';
import { IPV4_UDP_HEADER_BYTES, firstHopDatagramLimit } from './route-mtu';
import type { SecureConnection } from './connection';

/** Link MTUs worth a probe: tunnels (1400, WireGuard 1420), IP-in-IP 1480, PPPoE 1492, Ethernet, jumbo frames. */
export const PROBE_MTUS = [1400, 1420, 1480, 1492, 1500, 9000] as const;
/** Tries of one size before it counts as not fitting (RFC 8899 MAX_PROBES). */
export const MAX_PROBES = 3;
/** A try is lost when unanswered for 3 x the smallest RTT seen + 20 ms, within these bounds (1 s before any answer). */
export const MIN_PROBE_TIMEOUT_MS = 50;
export const MAX_PROBE_TIMEOUT_MS = 1_000;
/** The whole search ends by then: a size still unanswered counts as not fitting. */
export const SEARCH_BUDGET_MS = 4_000;
/** A GET waits for first answers at most this long (usually they are in before it is sent). */
export const GET_WAIT_MS = 100;
/**
 * A transfer smaller than this does not wait for answers still due: on a network path the wait
 * is up to a round trip (the 9000-byte probe is lost on nearly every path), as long as sending
 * 1 MiB takes on a fast link, while larger datagrams would spare such a file only a few per cent
 * of its datagrams.
 */
export const NO_WAIT_BELOW_BYTES = 1024 * 1024;

/** What the search found or is still doing, for tests, benchmarks and the report. */
export interface PathMtuState {
  /** The largest datagram confirmed both ways; the base size when no larger one was. */
  datagram: number;
  /** Sizes (datagram bytes) by outcome. */
  confirmed: number[];
  failed: number[];
  pending: number[];
  /** Probes sent in all (tries included). */
  probes: number;
  /** Smallest probe round trip seen, ms (undefined before any answer). */
  rttMs: number | undefined;
  done: boolean;
  /** Milliseconds from the first probe to the end of the search (or to now, while it runs). */
  elapsedMs: number;
}

/** What the search needs of a connection. */
export type ProbedConnection = Pick<SecureConnection, 'remote' | 'sendSizeProbe' | 'onForgotten'>;

interface Candidate {
  size: number;
  tries: number;
  sentAt: number;
  state: 'pending' | 'confirmed' | 'failed';
  forget: () => void;
}

/** The datagram sizes worth probing on `conn`'s path, ascending; none above what its first hop carries. */
export function probeSizes(conn: Pick<SecureConnection, 'remote'>): number[] {
  const { address, relay } = conn.remote;
  // A registry's relay forwards at most a network datagram (PROTOCOL.md 9.5); on one host no link limits.
  const ceiling = relay !== undefined ? MAX_DATAGRAM_BYTES : isLocalAddress(address) ? LOCAL_MAX_DATAGRAM_BYTES : 9000 - IPV4_UDP_HEADER_BYTES;
  const limit = Math.min(ceiling, firstHopDatagramLimit(address));
  const sizes = PROBE_MTUS.map((mtu) => mtu - IPV4_UDP_HEADER_BYTES).filter((s) => s < limit);
  return [...sizes, limit];
}

export class PathMtuSearch {
  private readonly candidates: Candidate[];
  private readonly startedAt = performance.now();
  private minRtt: number | undefined;
  private probes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly finished: Promise<void>;
  private finish!: () => void;
  private stopped = false;
  private endedAt: number | undefined;

  /**
   * Starts probing `conn` at once. `base` is the datagram the connection uses unprobed (a default
   * max payload's DATA), the floor of the result whatever its own probe does: that probe goes only
   * so that a round trip is measured even when every larger probe is lost.
   */
  constructor(
    private readonly conn: ProbedConnection,
    private readonly base: number,
    sizes: number[] = probeSizes(conn),
  ) {
    this.finished = new Promise((r) => (this.finish = r));
    const wanted = [...new Set([base, ...sizes.filter((s) => s > base)])].sort((a, b) => a - b);
    this.candidates = wanted.map((size) => ({ size, tries: 0, sentAt: 0, state: 'pending', forget: () => {} }));
    for (const c of this.candidates) this.send(c);
    this.arm();
    conn.onForgotten(() => this.stop());
  }

  /** The largest datagram confirmed so far, every smaller ladder size with it (the base size before any). */
  get datagram(): number {
    let best = this.base;
    for (const c of this.candidates) {
      if (c.size === this.base) continue;
      if (c.state !== 'confirmed') break;
      best = c.size;
    }
    return best;
  }

  get done(): boolean {
    return this.stopped || this.candidates.every((c) => c.state !== 'pending');
  }

  state(): PathMtuState {
    const by = (s: Candidate['state']) => this.candidates.filter((c) => c.state === s).map((c) => c.size);
    const elapsedMs = (this.endedAt ?? performance.now()) - this.startedAt;
    return { datagram: this.datagram, confirmed: by('confirmed'), failed: by('failed'), pending: by('pending'), probes: this.probes, rttMs: this.minRtt, done: this.done, elapsedMs };
  }

  /** Resolves when every size is confirmed or has failed (at most SEARCH_BUDGET_MS). */
  whenDone(): Promise<void> {
    return this.finished;
  }

  /**
   * Resolves when what a GET should use is known: every size answered or past its first try's
   * likely answer (twice the smallest RTT + 5 ms after the first round left), or GET_WAIT_MS.
   * The search goes on after it: a later GET on the connection may use a size confirmed later.
   */
  ready(): Promise<void> {
    const settled = () => {
      if (this.done || this.candidates.every((c) => c.state !== 'pending' || c.tries > 1)) return true;
      return this.minRtt !== undefined && performance.now() >= this.startedAt + 2 * this.minRtt + 5;
    };
    if (settled()) return Promise.resolve();
    return new Promise((resolve) => {
      const giveUp = performance.now() + GET_WAIT_MS;
      const poll = () => (settled() || performance.now() >= giveUp ? resolve() : setTimeout(poll, 1));
      poll();
    });
  }

  /** ready() for a transfer of `bytes`: at once when it is below NO_WAIT_BELOW_BYTES. */
  readyFor(bytes: number): Promise<void> {
    return bytes < NO_WAIT_BELOW_BYTES ? Promise.resolve() : this.ready();
  }

  /** Stops probing (the connection ended); answers that come later are ignored. */
  stop(): void {
    if (this.stopped) return;
    this.end();
    for (const c of this.candidates) c.forget();
  }

  private timeoutMs(): number {
    if (this.minRtt === undefined) return MAX_PROBE_TIMEOUT_MS;
    return Math.min(MAX_PROBE_TIMEOUT_MS, Math.max(MIN_PROBE_TIMEOUT_MS, 3 * this.minRtt + 20));
  }

  private send(c: Candidate): void {
    c.tries++;
    this.probes++;
    const sentAt = (c.sentAt = performance.now());
    c.forget = this.conn.sendSizeProbe(c.size, () => {
      if (c.state !== 'pending') return;
      c.state = 'confirmed';
      const rtt = performance.now() - sentAt;
      this.minRtt = this.minRtt === undefined ? rtt : Math.min(this.minRtt, rtt);
      this.check();
    });
  }

  /** Retries or gives up on tries past their timeout; ends the search when nothing is pending. */
  private check(): void {
    if (this.stopped) return;
    const now = performance.now();
    const overBudget = now - this.startedAt >= SEARCH_BUDGET_MS;
    let failedBelow = false;
    for (const c of this.candidates) {
      if (c.state === 'failed' && c.size !== this.base) failedBelow = true;
      if (c.state !== 'pending' || (!failedBelow && !overBudget && now - c.sentAt < this.timeoutMs())) continue;
      c.forget();
      if (c.tries < MAX_PROBES && !overBudget && !failedBelow) this.send(c);
      else {
        // Out of tries, or above a size that failed (its answer would prove nothing now).
        c.state = 'failed';
        if (c.size !== this.base) failedBelow = true;
      }
    }
    if (this.candidates.every((c) => c.state !== 'pending')) this.end();
    else this.arm();
  }

  private end(): void {
    this.stopped = true;
    this.endedAt = performance.now();
    clearTimeout(this.timer);
    this.finish();
  }

  private arm(): void {
    clearTimeout(this.timer);
    let next = this.startedAt + SEARCH_BUDGET_MS;
    for (const c of this.candidates) if (c.state === 'pending') next = Math.min(next, c.sentAt + this.timeoutMs());
    this.timer = setTimeout(() => this.check(), Math.max(1, next - performance.now()));
    this.timer.unref?.();
  }
}
