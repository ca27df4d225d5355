// Token buckets per client (README.md, "Limits"): each client key gets `perMinute` tokens of
// burst, refilled at perMinute/60 per second; a request takes one or is refused with how long to
// wait. In memory, per registry process.

/** At most this many clients are remembered; past it the least recently seen bucket is forgotten. */
export const MAX_TRACKED_CLIENTS = 100_000;

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    /** Tokens per minute, and the burst; 0 = unlimited. */
    readonly perMinute: number,
    private readonly maxClients = MAX_TRACKED_CLIENTS,
  ) {
    this.perMs = perMinute / 60_000;
  }

  /** Takes one token for `client`: 0 when allowed, else the milliseconds until one is there. */
  take(client: string, now = Date.now()): number {
    if (this.perMinute <= 0) return 0;
    const b = this.buckets.get(client);
    let tokens = this.perMinute;
    if (b) {
      tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * this.perMs);
      this.buckets.delete(client); // re-inserted below: the Map's order is least recently seen first
    }
    if (tokens < 1) {
      this.buckets.set(client, { tokens, at: now });
      return Math.ceil((1 - tokens) / this.perMs);
    }
    this.buckets.set(client, { tokens: tokens - 1, at: now });
    if (this.buckets.size > this.maxClients) this.buckets.delete(this.buckets.keys().next().value!);
    return 0;
  }

  /** Drops full buckets: they hold nothing a fresh one would not (called on a timer). */
  forget(now = Date.now()): void {
    for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) * this.perMs >= this.perMinute) this.buckets.delete(k);
  }

  get size(): number {
    return this.buckets.size;
  }
}
