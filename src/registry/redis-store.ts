// Redis store (ioredis), on one Redis or a Redis Cluster (redis-connection.ts). Layout, every key
// under the prefix (default "p2pshare:"); on a cluster the names are sharded and each shard's keys
// carry a hash tag (redis-keys.ts: {prefix}{s<N>}:peer:{key}, {prefix}{s<N>}:index, ...):
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
// atomic step however many registries share the Redis; a heartbeat is one script call, one round
// trip. Listing walks the index with ZRANGE BYLEX (never KEYS); on a cluster it walks the shards
// one after another (the cursor says which), so a page still costs O(page) plus at most one
// call per shard.
// On a cluster the client set lives in its own slot: a registration reserves the name there first
// (one atomic step, so the per-client cap holds under races) and a heartbeat renews it with a
// second command it does not wait for; --max-peers is checked against the shards' live counts
// as last swept, recounted near the cap (clusterCap; README.md "Redis Cluster" says how close).
//
// Index hygiene: members whose expiry has passed leave the index and the expiry set on every
// registration (a bounded batch), on a timer (all of them, in batches), and when a listing meets
// them; a listing examines a bounded number of members per page, whatever has expired.
import { randomBytes } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { clientKey } from './address-policy';
import { DEFAULT_MAX_PEERS } from './limits';
import type {
  Endpoint, KeepaliveInput, KeepaliveResult, KeptAlive, ListPage, OwnerResult, PeerRecord, PeerStore, RegisterInput, RegisterResult, RendezvousEntry, StoreLimits,
} from './store';
import { StoreUnavailableError } from './store';
import { connectRedis, parseRedisTarget, slotMapSuspect, type AnyRedis } from './redis-connection';
import { parseShardCursor, RedisKeys } from './redis-keys';
import { CLIENT_RESERVE, CLIENT_TOUCH, HEARTBEAT, KEEPALIVE, REGISTER, REMOVE, SECRET, SWEEP, SWEEP_BATCH, WALK } from './redis-scripts';

/** Shards swept per tick of the timer (a cluster has CLUSTER_SHARDS). */
const SHARDS_PER_SWEEP = 8;

/** Cluster: within this fraction of --max-peers, a new name is checked against a fresh count of every shard... */
const NEAR_CAP = 0.1;
/** ...at most this often (concurrent registrations share one count). */
const RECOUNT_MS = 250;

/** A listing examines at most this many index members per peer it may return. */
const LIST_WORK_FACTOR = 4;

type Reply = [string, string];
type Scripted = AnyRedis & {
  p2pRegister(...args: Array<string | number>): Promise<[string, string, string]>;
  p2pRegisterShard(...args: Array<string | number>): Promise<[string, string, string]>;
  p2pClientReserve(...args: Array<string | number>): Promise<Reply>;
  p2pClientTouch(...args: Array<string | number>): Promise<number>;
  p2pHeartbeat(...args: Array<string | number>): Promise<[string, string, string?]>;
  p2pRemove(...args: Array<string | number>): Promise<Reply>;
  p2pKeepalive(...args: Array<string | number>): Promise<string>;
  p2pSecret(...args: Array<string | number>): Promise<string>;
  p2pSweep(...args: Array<string | number>): Promise<[number, number]>;
  p2pWalk(...args: Array<string | number>): Promise<[string[], string, number]>;
};

export interface RedisStoreOptions extends StoreLimits {
  /** redis://... for one Redis, redis-cluster://host:port,... for a cluster (redis-connection.ts). */
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
  private readonly keys: RedisKeys;
  private readonly maxPeers: number;
  private readonly maxNamesPerClient: number;
  private readonly sweeper: NodeJS.Timeout | null;
  private sweeping = false;
  private lastError = '';
  /** Live registrations per shard as each was last swept; their sum is checked for --max-peers on a cluster. */
  private readonly shardLive: number[];
  /** The next shard the timer sweeps. */
  private nextShard = 0;
  /** Cluster: when every shard was last counted (count()), and the count under way. */
  private countedAt = 0;
  private counting: Promise<number> | null = null;

  constructor(opts: RedisStoreOptions) {
    this.maxPeers = opts.maxPeers ?? DEFAULT_MAX_PEERS;
    this.maxNamesPerClient = opts.maxNamesPerClient ?? Number.MAX_SAFE_INTEGER;
    const target = parseRedisTarget(opts.url);
    this.keys = new RedisKeys(opts.prefix ?? 'p2pshare:', target.kind === 'cluster');
    this.shardLive = new Array<number>(this.keys.shards).fill(0);
    const redis = connectRedis(target, { commandTimeoutMs: opts.commandTimeoutMs ?? 1500 });
    redis.on('error', (err: Error) => {
      this.lastError = err.message; // reported through ping()/503s, not thrown
    });
    redis.defineCommand('p2pRegister', { numberOfKeys: 5, lua: REGISTER });
    redis.defineCommand('p2pRegisterShard', { numberOfKeys: 4, lua: REGISTER });
    redis.defineCommand('p2pClientReserve', { numberOfKeys: 1, lua: CLIENT_RESERVE });
    redis.defineCommand('p2pClientTouch', { numberOfKeys: 1, lua: CLIENT_TOUCH });
    redis.defineCommand('p2pHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT });
    redis.defineCommand('p2pRemove', { numberOfKeys: 3, lua: REMOVE });
    redis.defineCommand('p2pKeepalive', { numberOfKeys: 1, lua: KEEPALIVE });
    redis.defineCommand('p2pSecret', { numberOfKeys: 1, lua: SECRET });
    redis.defineCommand('p2pSweep', { numberOfKeys: 2, lua: SWEEP });
    redis.defineCommand('p2pWalk', { numberOfKeys: 2, lua: WALK });
    this.redis = redis as Scripted;
    const every = opts.sweepIntervalMs ?? 1000;
    // On a cluster each tick sweeps SHARDS_PER_SWEEP shards in turn (each shard every 8 ticks), so
    // an idle registry costs the cluster a few commands a second, not two per shard.
    this.sweeper = every > 0 ? setInterval(() => void this.sweepNext().catch(() => {}), every).unref() : null;
  }

  /** True on a Redis Cluster. */
  get cluster(): boolean {
    return this.keys.cluster;
  }

  /**
   * Removes every expired member from the index and the expiry set of the given shards (all by
   * default), in batches (one script call each, so Redis is never held long), and notes how many
   * live ones each holds. Resolves with how many it removed. Any number of registries may run it at once.
   */
  async sweep(now = Date.now(), shards?: number[]): Promise<number> {
    if (this.sweeping || this.redis.status !== 'ready') return 0;
    this.sweeping = true;
    let total = 0;
    try {
      for (const s of shards ?? this.shardLive.keys()) {
        for (let round = 0; round < 1000; round++) {
          const [n, left] = await this.call(() => this.redis.p2pSweep(this.keys.index(s), this.keys.expiry(s), now, SWEEP_BATCH));
          total += Number(n);
          this.shardLive[s] = Number(left);
          if (Number(n) < SWEEP_BATCH) break;
        }
      }
    } finally {
      this.sweeping = false;
    }
    return total;
  }

  private sweepNext(): Promise<number> {
    const slice = Array.from({ length: Math.min(SHARDS_PER_SWEEP, this.keys.shards) }, (_, i) => (this.nextShard + i) % this.keys.shards);
    this.nextShard = (this.nextShard + slice.length) % this.keys.shards;
    return this.sweep(Date.now(), slice);
  }

  /** Cluster: live registrations summed over the shards' last sweeps or counts, plus this process's own registrations and removals since. */
  private get liveCount(): number {
    return this.shardLive.reduce((a, b) => a + b, 0);
  }

  /**
   * Cluster: the cap a registration passes to its shard's script, 0 when --max-peers live names
   * are registered (a new name is refused, a reclaim still passes), else none. Far from the cap
   * the shards' last sweeps decide (at most 8 s old); near it (or past it: names may have expired
   * since), every shard is counted again, at most every RECOUNT_MS.
   */
  private async clusterCap(now: number): Promise<number> {
    if (this.liveCount >= this.maxPeers * (1 - NEAR_CAP) && now - this.countedAt > RECOUNT_MS) {
      await (this.counting ??= this.count().finally(() => (this.counting = null)));
    }
    return this.liveCount >= this.maxPeers ? 0 : Number.MAX_SAFE_INTEGER;
  }

  /** Runs one Redis call, turning any failure into StoreUnavailableError. */
  private async call<T>(op: () => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready') {
      throw new StoreUnavailableError(`redis is ${this.redis.status}${this.lastError ? ` (${this.lastError})` : ''}`);
    }
    try {
      return await op();
    } catch (err) {
      slotMapSuspect(this.redis);
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
    const hex = await this.call(() => this.redis.p2pSecret(this.keys.secret, randomBytes(32).toString('hex')));
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new StoreUnavailableError(`redis: ${this.keys.secret} is not 64 hex digits`);
    return Buffer.from(hex, 'hex');
  }

  async register(input: RegisterInput): Promise<RegisterResult> {
    const r = input.record;
    const key = r.name.toLowerCase();
    const now = Date.now();
    const client = clientKey(r.observedAddress);
    const k = this.keys;
    const s = k.shard(key);
    let reserved = false;
    if (this.cluster) {
      const [held, wait] = await this.call(() => this.redis.p2pClientReserve(k.client(client), key, now, input.ttlMs, this.maxNamesPerClient));
      if (held === 'client_full') return { outcome: held, retryAfterMs: Math.max(1, Number(wait)) };
      reserved = held === 'added';
    }
    // On one Redis the script counts every live name; on a cluster it sees only its shard's.
    const cap = this.cluster ? await this.clusterCap(now) : this.maxPeers;
    const keys = [k.peer(key), k.index(s), k.expiry(s), k.used(key, input.challenge.id)];
    const args = [
      input.newTokenHash, input.ttlMs, key, now, r.name, r.publicKey, Math.max(1, input.challenge.expiresAt - now),
      cap, this.maxNamesPerClient, client, k.clientPrefix,
      'ip', r.ip, 'port', r.port, 'addresses', JSON.stringify(r.addresses),
      'observedAddress', r.observedAddress, 'lastSeen', r.lastSeen,
    ];
    const [outcome, name, old] = await this.call(() =>
      this.cluster ? this.redis.p2pRegisterShard(...keys, ...args) : this.redis.p2pRegister(...keys, k.client(client), ...args),
    );
    const ok = outcome === 'created' || outcome === 'reclaimed';
    if (this.cluster) {
      // The other slot's half: give back an unused reservation, take the name from its old client.
      if (!ok && reserved) await this.call(() => this.redis.zrem(k.client(client), key));
      if (ok && old !== '' && old !== client) await this.call(() => this.redis.zrem(k.client(old), key));
      if (outcome === 'created') this.shardLive[s]!++;
    }
    if (outcome === 'taken' || outcome === 'challenge_used' || outcome === 'full') return { outcome };
    if (outcome === 'client_full') return { outcome, retryAfterMs: Math.max(1, Number(name)) };
    return { outcome: outcome === 'reclaimed' ? 'reclaimed' : 'created', name };
  }

  /**
   * One script call, one round trip. On a cluster, every third beat or so also renews the name in
   * its client's set (HEARTBEAT says when), by a command not waited for; if that fails, the next
   * beat asks for it again.
   */
  async heartbeat(key: string, tokenHash: string, ttlMs: number, now: number): Promise<OwnerResult> {
    const k = this.keys;
    const [out, client, lease] = await this.call(() =>
      this.redis.p2pHeartbeat(k.peer(key), k.expiry(k.shard(key)), tokenHash, ttlMs, now, key, this.cluster ? '' : k.clientPrefix),
    );
    if (out === 'ok' && this.cluster && client) {
      this.redis.p2pClientTouch(k.client(client), key, Number(lease), 2 * ttlMs).catch(() => this.redis.hdel(k.peer(key), 'clientUntil').catch(() => {}));
    }
    return out as OwnerResult;
  }

  async remove(key: string, tokenHash: string): Promise<OwnerResult> {
    const k = this.keys;
    const s = k.shard(key);
    const [out, client] = await this.call(() => this.redis.p2pRemove(k.peer(key), k.index(s), k.expiry(s), tokenHash, key, this.cluster ? '' : k.clientPrefix));
    if (out === 'ok' && this.cluster) {
      this.shardLive[s] = Math.max(0, this.shardLive[s]! - 1);
      if (client !== '') await this.call(() => this.redis.zrem(k.client(client), key));
    }
    return out as OwnerResult;
  }

  async get(key: string): Promise<PeerRecord | null> {
    const h = await this.call(() => this.redis.hgetall(this.keys.peer(key)));
    return toRecord(h, Date.now());
  }

  async rendezvous(key: string): Promise<RendezvousEntry | null> {
    const h = await this.call(() => this.redis.hgetall(this.keys.peer(key)));
    const record = toRecord(h, Date.now());
    const sequence = /^\d{20}$/.test(h.seq ?? '') ? Number(h.seq) : 0;
    return record ? { record, tokenHash: h.tokenHash!, sequence } : null;
  }

  async keepalive(k: KeepaliveInput): Promise<KeepaliveResult> {
    const out = await this.call(() =>
      this.redis.p2pKeepalive(
        this.keys.peer(k.key), k.tokenHash, k.sequence.toString().padStart(20, '0'), JSON.stringify(k.udp), k.now + k.ttlMs,
        k.holder.id, k.holder.address ? JSON.stringify(k.holder.address) : '',
      ),
    );
    return out as KeepaliveResult;
  }

  async list(opts: { after: string | null; prefix: string; limit: number }): Promise<ListPage> {
    if (!this.cluster) return this.listShard(0, opts.after, opts.prefix, opts.limit);
    // Shard after shard from the cursor's: a page fills from as many shards as it takes.
    const peers: ListPage['peers'] = [];
    let { shard, key } = parseShardCursor(opts.after, this.keys.shards);
    for (; shard < this.keys.shards; shard++, key = null) {
      const page = await this.listShard(shard, key, opts.prefix, opts.limit - peers.length);
      peers.push(...page.peers);
      if (page.after !== null) return { peers, after: `${shard}:${page.after}` };
      if (peers.length === opts.limit) return { peers, after: await this.nextShardWith(shard + 1, opts.prefix) };
    }
    return { peers, after: null };
  }

  /**
   * A full page that ended with its shard: the cursor of the first later shard with a match, or
   * null when none has one, so that the last page says so (next: null) as on one Redis. At most
   * one call per shard, like the page itself.
   */
  private async nextShardWith(from: number, prefix: string): Promise<string | null> {
    for (let s = from; s < this.keys.shards; s++) {
      const probe = await this.listShard(s, null, prefix, 1);
      if (probe.peers.length > 0 || probe.after !== null) return `${s}:`;
    }
    return null;
  }

  /** Live peers of shard `s` with keys > `after` starting with `prefix`, in key order. */
  private async listShard(s: number, after: string | null, prefix: string, limit: number): Promise<ListPage> {
    let from = after !== null ? `(${after}` : `[${prefix}`;
    if (after !== null && after < prefix) from = `[${prefix}`;
    const to = prefix ? `(${prefix}\x7f` : '+';
    // One script finds the live members (and drops the expired ones it meets), examining at most
    // LIST_WORK_FACTOR x (limit + 1) of them: the work of a page is bounded whatever has expired.
    const [members, last, ended] = await this.call(() =>
      this.redis.p2pWalk(this.keys.index(s), this.keys.expiry(s), from, to, limit + 1, LIST_WORK_FACTOR * (limit + 1), Date.now()),
    );
    const peers: ListPage['peers'] = [];
    if (members.length > 0) {
      // One slot (the shard's), so one pipeline to one node on a cluster too.
      const pipe = this.redis.pipeline();
      for (const m of members) pipe.hmget(this.keys.peer(m), 'name', 'lastSeen', 'publicKey');
      const rows = await this.call(() => pipe.exec());
      for (let i = 0; i < members.length; i++) {
        const [err, vals] = rows![i]!;
        if (err) throw new StoreUnavailableError(`redis: ${err.message}`);
        const [name, lastSeen, publicKey] = vals as [string | null, string | null, string | null];
        if (name === null || lastSeen === null || publicKey === null) continue; // expired since the walk
        if (peers.length === limit) return { peers, after: members[i - 1]! };
        peers.push({ name, publicKey, lastSeen: Number(lastSeen) });
      }
    }
    if (Number(ended) === 1 || last === '') return { peers, after: null };
    // The budget ran out first (or a live member expired meanwhile): continue after the last one examined.
    return { peers, after: last };
  }

  /** Live registrations in every shard (each one's count kept for --max-peers on a cluster). */
  async count(): Promise<number> {
    const now = Date.now();
    const counts = await Promise.all(
      Array.from({ length: this.keys.shards }, (_, s) => this.call(() => this.redis.zcount(this.keys.expiry(s), `(${now}`, '+inf'))),
    );
    counts.forEach((n, s) => (this.shardLive[s] = n));
    this.countedAt = now;
    return counts.reduce((a, b) => a + b, 0);
  }

  /** On a cluster every master must answer: while one is down (until its replica takes over), 503. */
  async ping(): Promise<void> {
    if (!this.cluster) {
      await this.call(() => this.redis.ping());
      return;
    }
    const masters = (this.redis as Cluster).nodes('master');
    if (masters.length === 0) throw new StoreUnavailableError(`redis cluster: no master known${this.lastError ? ` (${this.lastError})` : ''}`);
    await Promise.all(masters.map((m) => this.call(() => m.ping())));
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
