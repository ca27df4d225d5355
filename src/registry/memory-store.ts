// In-process store: a Map with per-entry expiry, swept lazily on read and once a second. Its
// secret is random per process (a restarted registry has new keys; its old challenges fail).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { ListPage, OwnerResult, PeerRecord, PeerStore, RegisterInput, RegisterResult } from './store';
import { StoreUnavailableError } from './store';

interface Entry {
  record: PeerRecord;
  tokenHash: string;
  expiresAt: number;
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class MemoryStore implements PeerStore {
  readonly kind = 'memory' as const;
  private readonly entries = new Map<string, Entry>();
  /** Challenge id -> its expiry: challenges that already served a registration. */
  private readonly usedChallenges = new Map<string, number>();
  private readonly secretBytes = randomBytes(32);
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly maxPeers = 100_000) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), 1000);
    this.sweeper.unref();
  }

  private live(key: string, now = Date.now()): Entry | undefined {
    const e = this.entries.get(key);
    if (e && e.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private sweep(now: number): void {
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    for (const [id, expiresAt] of this.usedChallenges) if (expiresAt <= now) this.usedChallenges.delete(id);
  }

  async secret(): Promise<Buffer> {
    return Buffer.from(this.secretBytes);
  }

  async register(input: RegisterInput): Promise<RegisterResult> {
    const key = input.record.name.toLowerCase();
    const now = Date.now();
    const used = this.usedChallenges.get(input.challenge.id);
    if (used !== undefined && used > now) return { outcome: 'challenge_used' };
    const cur = this.live(key, now);
    if (cur && cur.record.publicKey !== input.record.publicKey) return { outcome: 'taken' };
    if (this.usedChallenges.size >= this.maxPeers) {
      this.sweep(now);
      if (this.usedChallenges.size >= this.maxPeers) throw new StoreUnavailableError('too many registrations in flight');
    }
    this.usedChallenges.set(input.challenge.id, input.challenge.expiresAt);
    if (cur) {
      // The same key: the registration is replaced, and only the new token owns it.
      cur.record = { ...input.record, name: cur.record.name, addresses: [...input.record.addresses] };
      cur.tokenHash = input.newTokenHash;
      cur.expiresAt = now + input.ttlMs;
      return { outcome: 'reclaimed', name: cur.record.name };
    }
    if (this.entries.size >= this.maxPeers) {
      this.sweep(now);
      if (this.entries.size >= this.maxPeers) throw new StoreUnavailableError('registry is full');
    }
    this.entries.set(key, { record: { ...input.record, addresses: [...input.record.addresses] }, tokenHash: input.newTokenHash, expiresAt: now + input.ttlMs });
    return { outcome: 'created', name: input.record.name };
  }

  async heartbeat(key: string, tokenHash: string, ttlMs: number, now: number): Promise<OwnerResult> {
    const cur = this.live(key, now);
    if (!cur) return 'not_found';
    if (!sameHash(cur.tokenHash, tokenHash)) return 'forbidden';
    cur.record.lastSeen = now;
    cur.expiresAt = now + ttlMs;
    return 'ok';
  }

  async remove(key: string, tokenHash: string): Promise<OwnerResult> {
    const cur = this.live(key);
    if (!cur) return 'not_found';
    if (!sameHash(cur.tokenHash, tokenHash)) return 'forbidden';
    this.entries.delete(key);
    return 'ok';
  }

  async get(key: string): Promise<PeerRecord | null> {
    const cur = this.live(key);
    return cur ? { ...cur.record, addresses: [...cur.record.addresses] } : null;
  }

  async list(opts: { after: string | null; prefix: string; limit: number }): Promise<ListPage> {
    const now = Date.now();
    // Keep only the smallest limit+1 keys (sorted) instead of sorting every peer on each page.
    const want = opts.limit + 1;
    const keys: string[] = [];
    for (const [k, e] of this.entries) {
      if (e.expiresAt <= now || !k.startsWith(opts.prefix)) continue;
      if (opts.after !== null && k <= opts.after) continue;
      if (keys.length === want && k >= keys[want - 1]!) continue;
      let lo = 0;
      let hi = keys.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (keys[mid]! < k) lo = mid + 1;
        else hi = mid;
      }
      keys.splice(lo, 0, k);
      if (keys.length > want) keys.pop();
    }
    const page = keys.slice(0, opts.limit);
    return {
      peers: page.map((k) => {
        const r = this.entries.get(k)!.record;
        return { name: r.name, publicKey: r.publicKey, lastSeen: r.lastSeen };
      }),
      after: keys.length > opts.limit ? page[page.length - 1]! : null,
    };
  }

  async count(): Promise<number> {
    this.sweep(Date.now());
    return this.entries.size;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
