// Token buckets by key (a source address, or one key for a global limit): `burst` tokens, refilled
// at `perSecond`; taking one either succeeds or says how long until one is there. The keys are a
// bounded LRU, so a flood of distinct keys costs a bounded amount of memory.

interface Bucket {
  tokens: number;
  at: number;
}

export interface TokenBucketOptions {
  perSecond: number;
  burst: number;
  /** Keys remembered at most; past this the least recently used bucket is forgotten (it refills). */
  maxKeys?: number;
  /** Milliseconds on a clock that does not jump back; performance.now() by default. */
  now?: () => number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly burst: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(o: TokenBucketOptions) {
    this.perMs = o.perSecond / 1000;
    this.burst = o.burst;
    this.maxKeys = o.maxKeys ?? 65_536;
    this.now = o.now ?? (() => performance.now());
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Tokens `key` has at `now` (without taking one). */
  available(key: string, now = this.now()): number {
    const b = this.buckets.get(key);
    return b ? Math.min(this.burst, b.tokens + (now - b.at) * this.perMs) : this.burst;
  }

  /**
   * Takes `cost` tokens (one by default; a byte budget takes the datagram's size) for `key`: 0
   * when allowed, else the milliseconds until they are there.
   */
  take(key: string, now = this.now(), cost = 1): number {
    const tokens = this.available(key, now);
    this.buckets.delete(key); // re-inserted: the Map's order is least recently used first
    if (tokens < cost) {
      this.buckets.set(key, { tokens, at: now });
      return Math.ceil((cost - tokens) / this.perMs);
    }
    this.buckets.set(key, { tokens: tokens - cost, at: now });
    if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    return 0;
  }

  /** Drops full buckets: they hold nothing a fresh one would not (for a timer). */
  forget(now = this.now()): void {
    for (const k of this.buckets.keys()) if (this.available(k, now) >= this.burst) this.buckets.delete(k);
  }
}
