// The load generator's heartbeat schedule: every simulated peer beats every `everyMs` at the phase
// it registered at, as a real peer does. A timing wheel of TICK_MS slots finds the peers due
// without scanning all of them, and the queue of beats waiting for a free request holds each peer
// at most once: a beat still waiting when the peer's next one comes due is counted as skipped and
// replaced by it. Memory is O(peers) however far the generator falls behind (an unbounded queue
// of due beats once ran the generator out of its heap at 10^5 peers).

/** Beats due within one tick leave together: 10 ms keeps those bursts small (10 at 1,000 beats/s). */
export const TICK_MS = 10;

export interface DueBeat {
  peer: number;
  /** How long it waited past its due time before a request was free (the generator's lag). */
  lagMs: number;
}

export class BeatWheel {
  private readonly slots: number[][];
  private readonly waiting: Uint8Array;
  private readonly dueAt: Float64Array;
  /** The tick of each peer's first beat: its slot comes round earlier, within its first period. */
  private readonly firstTick: Float64Array;
  private queue: number[] = [];
  private head = 0;
  private lastTick = -1;
  /** Beats that came due, and those replaced while still waiting. */
  offered = 0;
  skipped = 0;

  constructor(peers: number, private readonly everyMs: number) {
    this.slots = Array.from({ length: Math.max(1, Math.ceil(everyMs / TICK_MS)) }, () => []);
    this.waiting = new Uint8Array(peers);
    this.dueAt = new Float64Array(peers);
    this.firstTick = new Float64Array(peers);
  }

  /** Peer `peer` registered at `atMs`: its first beat is one period later, at the same phase after. */
  add(peer: number, atMs: number): void {
    const tick = Math.max(this.lastTick + 1, Math.floor((atMs + this.everyMs) / TICK_MS));
    this.firstTick[peer] = tick;
    this.slots[tick % this.slots.length]!.push(peer);
  }

  /** Moves the beats due by `nowMs` into the queue. */
  advance(nowMs: number): void {
    const now = Math.floor(nowMs / TICK_MS);
    for (let t = Math.max(this.lastTick + 1, now - this.slots.length + 1); t <= now; t++) {
      for (const peer of this.slots[t % this.slots.length]!) {
        if (t < this.firstTick[peer]!) continue;
        this.offered++;
        if (this.waiting[peer]) this.skipped++;
        else {
          this.waiting[peer] = 1;
          this.queue.push(peer);
        }
        this.dueAt[peer] = t * TICK_MS;
      }
    }
    this.lastTick = Math.max(this.lastTick, now);
  }

  /** The oldest waiting beat, or undefined. */
  next(nowMs: number): DueBeat | undefined {
    if (this.head >= this.queue.length) return undefined;
    const peer = this.queue[this.head++]!;
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.waiting[peer] = 0;
    return { peer, lagMs: nowMs - this.dueAt[peer]! };
  }

  /** Beats waiting for a free request. */
  get backlog(): number {
    return this.queue.length - this.head;
  }

  /** Counts from zero (the start of a measuring window). */
  resetCounts(): void {
    this.offered = 0;
    this.skipped = 0;
  }
}
