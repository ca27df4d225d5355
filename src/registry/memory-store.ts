// In-process store: a Map with per-entry expiry, swept lazily on read and once a second. Its
// secret is random per process (a restarted registry has new keys; its old challenges fail).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { clientKey } from './address-policy';
import { DEFAULT_MAX_PEERS } from './limits';
import type {
  KeepaliveInput, KeepaliveResult, KeptAlive, ListPage, OwnerResult, PeerRecord, PeerStore, RegisterInput, RegisterResult, RendezvousEntry, StoreLimits,
} from './store';
import { StoreUnavailableError } from './store';

interface Entry {
  record: PeerRecord;
  tokenHash: string;
  expiresAt: number;
  /** clientKey of the address it was registered from. */
  client: string;
  /** The highest keepalive sequence accepted under this token. */
  sequence: number;
  /** The kept-alive mapping and until when it lives. */
  udp: (KeptAlive & { expiresAt: number }) | null;
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
  /** Client key -> the keys of its live (or not yet swept) names. */
  private readonly byClient = new Map<string, Set<string>>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly maxPeers: number;
  private readonly maxNamesPerClient: number;
  private readonly maxUsedChallenges: number;

  constructor(limits: StoreLimits = {}) {
    this.maxPeers = limits.maxPeers ?? DEFAULT_MAX_PEERS;
    this.maxNamesPerClient = limits.maxNamesPerClient ?? Infinity;
    this.maxUsedChallenges = Math.max(this.maxPeers, DEFAULT_MAX_PEERS);
    this.sweeper = setInterval(() => this.sweep(Date.now()), 1000);
    this.sweeper.unref();
  }

  private live(key: string, now = Date.now()): Entry | undefined {
    const e = this.entries.get(key);
    if (e && e.expiresAt <= now) {
      this.drop(key, e);
      return undefined;
    }
    return e;
  }

  /** Forgets an entry, and it in its client's names. */
  private drop(key: string, e: Entry): void {
    this.entries.delete(key);
    const names = this.byClient.get(e.client);
    names?.delete(key);
    if (names?.size === 0) this.byClient.delete(e.client);
  }

  private sweep(now: number): void {
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.drop(k, e);
    for (const [id, expiresAt] of this.usedChallenges) if (expiresAt <= now) this.usedChallenges.delete(id);
  }

  /** null when `client` may hold one more name, else how long until one of its names expires. */
  private clientFull(client: string, now: number): number | null {
    const names = this.byClient.get(client);
    if (!names || names.size < this.maxNamesPerClient) return null;
    let first = Infinity;
    for (const k of [...names]) {
      const e = this.live(k, now);
      if (e) first = Math.min(first, e.expiresAt);
    }
    if ((this.byClient.get(client)?.size ?? 0) < this.maxNamesPerClient) return null;
    return Math.max(1, first - now);
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
    const client = clientKey(input.record.observedAddress);
    if (cur?.client !== client) {
      const wait = this.clientFull(client, now);
      if (wait !== null) return { outcome: 'client_full', retryAfterMs: wait };
    }
    if (!cur && this.entries.size >= this.maxPeers) {
      this.sweep(now);
      if (this.entries.size >= this.maxPeers) return { outcome: 'full' };
    }
    if (this.usedChallenges.size >= this.maxUsedChallenges) {
      this.sweep(now);
      if (this.usedChallenges.size >= this.maxUsedChallenges) throw new StoreUnavailableError('too many registrations in flight');
    }
    this.usedChallenges.set(input.challenge.id, input.challenge.expiresAt);
    let entry: Entry;
    let outcome: RegisterResult;
    if (cur) {
      // The same key: the registration is replaced, and only the new token owns it.
      this.drop(key, cur);
      entry = { ...cur, record: { ...input.record, name: cur.record.name, addresses: [...input.record.addresses] } };
      outcome = { outcome: 'reclaimed', name: cur.record.name };
    } else {
      entry = { record: { ...input.record, addresses: [...input.record.addresses] }, tokenHash: '', expiresAt: 0, client, sequence: 0, udp: null };
      outcome = { outcome: 'created', name: input.record.name };
    }
    // A new token starts a new sequence; the mapping its old token kept alive is forgotten.
    entry.sequence = 0;
    entry.udp = null;
    entry.tokenHash = input.newTokenHash;
    entry.expiresAt = now + input.ttlMs;
    entry.client = client;
    this.entries.set(key, entry);
    let names = this.byClient.get(client);
    if (!names) this.byClient.set(client, (names = new Set()));
    names.add(key);
    return outcome;
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
    this.drop(key, cur);
    return 'ok';
  }

  async get(key: string): Promise<PeerRecord | null> {
    const cur = this.live(key);
    return cur ? this.copy(cur, Date.now()) : null;
  }

  private copy(e: Entry, now: number): PeerRecord {
    const { udp, record } = e;
    return {
      ...record,
      addresses: [...record.addresses],
      ...(udp && udp.expiresAt > now ? { udp: { address: { ...udp.address }, holder: { id: udp.holder.id, address: udp.holder.address && { ...udp.holder.address } } } } : {}),
    };
  }

  async rendezvous(key: string): Promise<RendezvousEntry | null> {
    const now = Date.now();
    const cur = this.live(key, now);
    return cur ? { record: this.copy(cur, now), tokenHash: cur.tokenHash, sequence: cur.sequence } : null;
  }

  async keepalive(input: KeepaliveInput): Promise<KeepaliveResult> {
    const cur = this.live(input.key, input.now);
    if (!cur) return 'not_found';
    if (!sameHash(cur.tokenHash, input.tokenHash)) return 'forbidden';
    if (input.sequence <= cur.sequence) return 'stale';
    cur.sequence = input.sequence;
    cur.udp = { address: { ...input.udp }, holder: { id: input.holder.id, address: input.holder.address && { ...input.holder.address } }, expiresAt: input.now + input.ttlMs };
    return 'ok';
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
