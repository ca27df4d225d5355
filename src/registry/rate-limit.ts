// Token buckets per client (README.md, "Limits"): each client key gets `perMinute` tokens of
// burst, refilled at perMinute/60 per second; a request takes one or is refused with how long to
// wait. In memory, per registry process; the buckets themselves are core/token-bucket.ts.
import { TokenBuckets } from '../core/token-bucket';

/** At most this many clients are remembered; past it the least recently seen bucket is forgotten. */
export const MAX_TRACKED_CLIENTS = 100_000;

export class RateLimiter extends TokenBuckets {
  constructor(
    /** Tokens per minute, and the burst; 0 = unlimited. */
    readonly perMinute: number,
    maxClients = MAX_TRACKED_CLIENTS,
  ) {
    super({ perSecond: perMinute / 60, burst: perMinute, maxKeys: maxClients, now: () => Date.now() });
  }

  /** Takes one token for `client`: 0 when allowed, else the milliseconds until one is there. */
  override take(client: string, now = Date.now()): number {
    return this.perMinute <= 0 ? 0 : super.take(client, now);
  }
}
