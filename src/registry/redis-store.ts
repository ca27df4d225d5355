// Redis store (ioredis). Layout, every key under the prefix (default "p2pshare:"):
//   {prefix}peer:{key}   hash {name, ip, port, addresses(JSON), observedAddress, publicKey,
//                        lastSeen, tokenHash, client}, expired by Redis itself (PEXPIRE = ttl,
//                        renewed by each heartbeat); once a keepalive is accepted also {seq (20
//                        digits), udp (JSON {ip,port}), udpExpires, holder (process id),
//                        holderAddr (JSON {ip,port} or "")}, which a new registration clears
//   {prefix}index        sorted set, all scores 0: the keys in lexical order, for paged listing
//   {prefix}expiry       sorted set, score = expiry time: lets the index be pruned and counted
//   {prefix}client:{c}   sorted set per client (clientKey of the registering address), score =
//                        expiry time: that client's live names, for --max-names-per-ip; expires
//                        with its last name
//   {prefix}secret       the deployment's secret (hex), set once by whichever registry is first
//   {prefix}used:{id}    a challenge that served a registration, until the challenge expires
// Registration, heartbeat, removal and keepalive are Lua scripts (redis-scripts.ts), so each is one
// atomic step however many registries share the Redis. Listing walks the index with ZRANGE
// BYLEX (never KEYS).
//
// Index hygiene: members whose expiry has passed leave the index and the expiry set on every
// registration (a bounded batch), on a timer (all of them, in batches), and when a listing meets
// them; a listing examines a bounded number of members per page, whatever has expired.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { clientKey } from './address-policy';
import { DEFAULT_MAX_PEERS } from './limits';
import type {
  Endpoint, KeepaliveInput, KeepaliveResult, KeptAlive, ListPage, OwnerResult, PeerRecord, PeerStore, RegisterInput, RegisterResult, RendezvousEntry, StoreLimits,
} from './store';
import { StoreUnavailableError } from './store';
import { HEARTBEAT, KEEPALIVE, REGISTER, REMOVE, SECRET, SWEEP, SWEEP_BATCH, WALK } from './redis-scripts';

/** A listing examines at most this many index members per peer it may return. */
const LIST_WORK_FACTOR = 4;

type Scripted = Redis & {
  p2pRegister(...args: Array<string | number>): Promise<[string, string]>;
  p2pHeartbeat(...args: Array<string | number>): Promise<string>;
  p2pRemove(...args: Array<string | number>): Promise<string>;
  p2pKeepalive(...args: Array<string | number>): Promise<string>;
  p2pSecret(...args: Array<string | number>): Promise<string>;
  p2pSweep(...args: Array<string | number>): Promise<number>;
  p2pWalk(...args: Array<string | number>): Promise<[string[], string, number]>;
};

export interface RedisStoreOptions extends StoreLimits {
  url: string;
  prefix?: string;
  /** A command not answered within this many ms fails (the server then answers 503). */
  commandTimeoutMs?: number;
  /** How often expired members are swept from the index (default every second; 0 = never). */
  sweepIntervalMs?: number;
}

export class RedisStore implements PeerStore {
  readonly kind = 'redis' as const;
  private readonly redis: Scripted;
  private readonly prefix: string;
  private readonly maxPeers: number;
  private readonly maxNamesPerClient: number;
  private readonly sweeper: NodeJS.Timeout | null;
  private sweeping = false;
  private lastError = '';

  constructor(opts: RedisStoreOptions) {
    this.prefix = opts.prefix ?? 'p2pshare:';
    this.maxPeers = opts.maxPeers ?? DEFAULT_MAX_PEERS;
    this.maxNamesPerClient = opts.maxNamesPerClient ?? Number.MAX_SAFE_INTEGER;
    const redis = new Redis(opts.url, {
      // Fail fast instead of queueing while disconnected; reconnect forever in the background.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.commandTimeoutMs ?? 1500,
      connectTimeout: 1500,
      retryStrategy: (times) => Math.min(100 * times, 1000),
      lazyConnect: false,
    });
    redis.on('error', (err: Error) => {
      this.lastError = err.message; // reported through ping()/503s, not thrown
    });
    redis.defineCommand('p2pRegister', { numberOfKeys: 5, lua: REGISTER });
    redis.defineCommand('p2pHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT });
    redis.defineCommand('p2pRemove', { numberOfKeys: 3, lua: REMOVE });
    redis.defineCommand('p2pKeepalive', { numberOfKeys: 1, lua: KEEPALIVE });
    redis.defineCommand('p2pSecret', { numberOfKeys: 1, lua: SECRET });
    redis.defineCommand('p2pSweep', { numberOfKeys: 2, lua: SWEEP });
    redis.defineCommand('p2pWalk', { numberOfKeys: 2, lua: WALK });
    this.redis = redis as Scripted;
    const every = opts.sweepIntervalMs ?? 1000;
    this.sweeper = every > 0 ? setInterval(() => void this.sweep().catch(() => {}), every).unref() : null;
  }

  /**
   * Removes every expired member from the index and the expiry set, in batches (one script call
   * each, so Redis is never held long). Resolves with how many it removed. Run on a timer; any
   * number of registries may run it at once.
   */
  async sweep(now = Date.now()): Promise<number> {
    if (this.sweeping || this.redis.status !== 'ready') return 0;
    this.sweeping = true;
    let total = 0;
    try {
      for (let round = 0; round < 1000; round++) {
        const n = Number(await this.call(() => this.redis.p2pSweep(this.indexKey, this.expiryKey, now, SWEEP_BATCH)));
        total += n;
        if (n < SWEEP_BATCH) break;
      }
    } finally {
      this.sweeping = false;
    }
    return total;
  }

  private get clientPrefix(): string {
    return `${this.prefix}client:`;
  }

  private peerKey(key: string): string {
    return `${this.prefix}peer:${key}`;
  }
  private get indexKey(): string {
    return `${this.prefix}index`;
  }
  private get expiryKey(): string {
    return `${this.prefix}expiry`;
  }

  /** Runs one Redis call, turning any failure into StoreUnavailableError. */
  private async call<T>(op: () => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready') {
      throw new StoreUnavailableError(`redis is ${this.redis.status}${this.lastError ? ` (${this.lastError})` : ''}`);
    }
    try {
      return await op();
    } catch (err) {
      throw new StoreUnavailableError(`redis: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Resolves once connected (or rejects after timeoutMs); for callers that want to wait. */
  waitReady(timeoutMs: number): Promise<boolean> {
    if (this.redis.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(v);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.redis.on('ready', onReady);
    });
  }

  /**
   * Read from Redis on every call rather than kept: a Redis restarted empty gets a new secret,
   * and every registry process must then use that one, not each its own old copy.
   */
  async secret(): Promise<Buffer> {
    const hex = await this.call(() => this.redis.p2pSecret(`${this.prefix}secret`, randomBytes(32).toString('hex')));
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new StoreUnavailableError(`redis: ${this.prefix}secret is not 64 hex digits`);
    return Buffer.from(hex, 'hex');
  }

  async register(input: RegisterInput): Promise<RegisterResult> {
    const r = input.record;
    const key = r.name.toLowerCase();
    const now = Date.now();
    const client = clientKey(r.observedAddress);
    const [outcome, name] = await this.call(() =>
      this.redis.p2pRegister(
        this.peerKey(key), this.indexKey, this.expiryKey, `${this.prefix}used:${input.challenge.id}`, this.clientPrefix + client,
        input.newTokenHash, input.ttlMs, key, now, r.name, r.publicKey, Math.max(1, input.challenge.expiresAt - now),
        this.maxPeers, this.maxNamesPerClient, client, this.clientPrefix,
        'ip', r.ip, 'port', r.port, 'addresses', JSON.stringify(r.addresses),
        'observedAddress', r.observedAddress, 'lastSeen', r.lastSeen,
      ),
    );
    if (outcome === 'taken' || outcome === 'challenge_used' || outcome === 'full') return { outcome };
    if (outcome === 'client_full') return { outcome, retryAfterMs: Math.max(1, Number(name)) };
    return { outcome: outcome === 'reclaimed' ? 'reclaimed' : 'created', name };
  }

  async heartbeat(key: string, tokenHash: string, ttlMs: number, now: number): Promise<OwnerResult> {
    const out = await this.call(() => this.redis.p2pHeartbeat(this.peerKey(key), this.expiryKey, tokenHash, ttlMs, now, key, this.clientPrefix));
    return out as OwnerResult;
  }

  async remove(key: string, tokenHash: string): Promise<OwnerResult> {
    const out = await this.call(() => this.redis.p2pRemove(this.peerKey(key), this.indexKey, this.expiryKey, tokenHash, key, this.clientPrefix));
    return out as OwnerResult;
  }

  async get(key: string): Promise<PeerRecord | null> {
    const h = await this.call(() => this.redis.hgetall(this.peerKey(key)));
    return toRecord(h, Date.now());
  }

  async rendezvous(key: string): Promise<RendezvousEntry | null> {
    const h = await this.call(() => this.redis.hgetall(this.peerKey(key)));
    const record = toRecord(h, Date.now());
    const sequence = /^\d{20}$/.test(h.seq ?? '') ? Number(h.seq) : 0;
    return record ? { record, tokenHash: h.tokenHash!, sequence } : null;
  }

  async keepalive(k: KeepaliveInput): Promise<KeepaliveResult> {
    const out = await this.call(() =>
      this.redis.p2pKeepalive(
        this.peerKey(k.key), k.tokenHash, k.sequence.toString().padStart(20, '0'), JSON.stringify(k.udp), k.now + k.ttlMs,
        k.holder.id, k.holder.address ? JSON.stringify(k.holder.address) : '',
      ),
    );
    return out as KeepaliveResult;
  }

  async list(opts: { after: string | null; prefix: string; limit: number }): Promise<ListPage> {
    let from = opts.after !== null ? `(${opts.after}` : `[${opts.prefix}`;
    if (opts.after !== null && opts.after < opts.prefix) from = `[${opts.prefix}`;
    const to = opts.prefix ? `(${opts.prefix}\x7f` : '+';
    // One script finds the live members (and drops the expired ones it meets), examining at most
    // LIST_WORK_FACTOR x (limit + 1) of them: the work of a page is bounded whatever has expired.
    const [members, last, ended] = await this.call(() =>
      this.redis.p2pWalk(this.indexKey, this.expiryKey, from, to, opts.limit + 1, LIST_WORK_FACTOR * (opts.limit + 1), Date.now()),
    );
    const peers: ListPage['peers'] = [];
    if (members.length > 0) {
      const pipe = this.redis.pipeline();
      for (const m of members) pipe.hmget(this.peerKey(m), 'name', 'lastSeen', 'publicKey');
      const rows = await this.call(() => pipe.exec());
      for (let i = 0; i < members.length; i++) {
        const [err, vals] = rows![i]!;
        if (err) throw new StoreUnavailableError(`redis: ${err.message}`);
        const [name, lastSeen, publicKey] = vals as [string | null, string | null, string | null];
        if (name === null || lastSeen === null || publicKey === null) continue; // expired since the walk
        if (peers.length === opts.limit) return { peers, after: members[i - 1]! };
        peers.push({ name, publicKey, lastSeen: Number(lastSeen) });
      }
    }
    if (Number(ended) === 1 || last === '') return { peers, after: null };
    // The budget ran out first (or a live member expired meanwhile): continue after the last one examined.
    return { peers, after: last };
  }

  async count(): Promise<number> {
    return this.call(() => this.redis.zcount(this.expiryKey, `(${Date.now()}`, '+inf'));
  }

  async ping(): Promise<void> {
    await this.call(() => this.redis.ping());
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

/** An {ip, port} from its JSON, or null. */
function endpoint(json: string | undefined): Endpoint | null {
  if (!json) return null;
  try {
    const e = JSON.parse(json) as Partial<Endpoint>;
    return typeof e.ip === 'string' && typeof e.port === 'number' ? { ip: e.ip, port: e.port } : null;
  } catch {
    return null;
  }
}

function toRecord(h: Record<string, string>, now: number): PeerRecord | null {
  if (!h.name || !h.tokenHash || !h.publicKey) return null;
  let addresses: string[] = [];
  try {
    const parsed: unknown = JSON.parse(h.addresses ?? '[]');
    if (Array.isArray(parsed)) addresses = parsed.filter((a): a is string => typeof a === 'string');
  } catch {
    addresses = [];
  }
  return {
    name: h.name,
    ip: h.ip ?? '',
    port: Number(h.port),
    addresses,
    observedAddress: h.observedAddress ?? '',
    publicKey: h.publicKey,
    lastSeen: Number(h.lastSeen),
    ...keptAlive(h, now),
  };
}

/** The live mapping of a peer hash, as the `udp` of its record. */
function keptAlive(h: Record<string, string>, now: number): { udp?: KeptAlive } {
  const address = endpoint(h.udp);
  if (!address || !h.holder || !(Number(h.udpExpires) > now)) return {};
  return { udp: { address, holder: { id: h.holder, address: endpoint(h.holderAddr) } } };
}
