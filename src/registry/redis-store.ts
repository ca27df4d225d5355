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
// Registration, heartbeat and removal are Lua scripts, so each is one atomic step however many
// registries share the Redis. Listing walks the index with ZRANGE BYLEX (never KEYS).
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

/** Expired members removed by each registration (bounded work per write). */
const PRUNE_ON_WRITE = 100;
/** Expired members removed per script call of the sweep (the sweep loops until none is left). */
const SWEEP_BATCH = 1000;
/** A listing examines at most this many index members per peer it may return. */
const LIST_WORK_FACTOR = 4;

// Removes up to `batch` expired members from the index and the expiry set. KEYS: index, expiry.
const PRUNE_FN = `
local function prune(index, expiry, now, batch)
  local dead = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, batch)
  if #dead > 0 then
    redis.call('ZREM', index, unpack(dead))
    redis.call('ZREM', expiry, unpack(dead))
  end
  return #dead
end
`;

/** The fields a keepalive writes (a new registration deletes them: new token, new sequence). */
const KEEPALIVE_FIELDS = "'seq', 'udp', 'udpExpires', 'holder', 'holderAddr'";

// KEYS: peer, index, expiry, used, client set. ARGV: newHash, ttlMs, member, now, name, publicKey,
// usedTtlMs, maxPeers, maxPerClient, client, client-set prefix, then the other field/value pairs.
// A live record bound to another key is taken; one bound to the same key is reclaimed: every
// field but the name is replaced, the new token hash among them, so the old token stops working.
// A record without a publicKey (written before keys) counts as free. A new name is refused when
// the store holds maxPeers live ones; any name when its client holds maxPerClient others.
const REGISTER = `${PRUNE_FN}
if redis.call('EXISTS', KEYS[4]) == 1 then return {'challenge_used', ''} end
local now = tonumber(ARGV[4])
local ttl = tonumber(ARGV[2])
local cur = redis.call('HGET', KEYS[1], 'publicKey')
local outcome = 'created'
if cur then
  if cur ~= ARGV[6] then return {'taken', ''} end
  outcome = 'reclaimed'
end
prune(KEYS[2], KEYS[3], now, ${PRUNE_ON_WRITE})
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
if not redis.call('ZSCORE', KEYS[5], ARGV[3]) and redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[9]) then
  local first = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  return {'client_full', tostring(tonumber(first[2]) - now)}
end
if outcome == 'created' and redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf') >= tonumber(ARGV[8]) then
  return {'full', ''}
end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[7])
redis.call('HDEL', KEYS[1], ${KEEPALIVE_FIELDS})
if outcome == 'created' then redis.call('HSET', KEYS[1], 'name', ARGV[5]) end
local old = redis.call('HGET', KEYS[1], 'client')
if old and old ~= ARGV[10] then redis.call('ZREM', ARGV[11] .. old, ARGV[3]) end
redis.call('HSET', KEYS[1], 'tokenHash', ARGV[1], 'publicKey', ARGV[6], 'client', ARGV[10], unpack(ARGV, 12))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('ZADD', KEYS[3], now + ttl, ARGV[3])
redis.call('ZADD', KEYS[5], now + ttl, ARGV[3])
if redis.call('PTTL', KEYS[5]) < ttl then redis.call('PEXPIRE', KEYS[5], ttl) end
return {outcome, redis.call('HGET', KEYS[1], 'name')}
`;

// KEYS: index, expiry. ARGV: now, batch. Returns how many expired members it removed.
const SWEEP = `${PRUNE_FN}
return prune(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
`;

// KEYS: index, expiry. ARGV: from, to (ZRANGEBYLEX bounds), want, budget, now.
// Walks the index from `from`, examining at most `budget` members, and returns up to `want` of
// them whose expiry is still ahead; the expired ones it met leave the index and the expiry set.
// Returns {live members, the last member examined (or ''), 1 if the range ended else 0}.
const WALK = `
local from, to = ARGV[1], ARGV[2]
local want, budget, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local live, dead = {}, {}
local examined, last, ended = 0, '', 0
while examined < budget and #live < want do
  local size = math.min(budget - examined, 1000)
  local batch = redis.call('ZRANGEBYLEX', KEYS[1], from, to, 'LIMIT', 0, size)
  for _, m in ipairs(batch) do
    examined = examined + 1
    last = m
    local at = redis.call('ZSCORE', KEYS[2], m)
    if at and tonumber(at) > now then
      live[#live + 1] = m
      if #live == want then break end
    else
      dead[#dead + 1] = m
    end
  end
  if #batch < size then ended = 1 break end
  from = '(' .. last
end
for i = 1, #dead, 1000 do
  local chunk = {unpack(dead, i, math.min(i + 999, #dead))}
  redis.call('ZREM', KEYS[1], unpack(chunk))
  redis.call('ZREM', KEYS[2], unpack(chunk))
end
return {live, last, ended}
`;

// KEYS: secret. ARGV: a fresh secret (hex), kept only if there is none yet.
const SECRET = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`;

// KEYS: peer, expiry. ARGV: tokenHash, ttlMs, now, member, client-set prefix.
const HEARTBEAT = `
local cur = redis.call('HGET', KEYS[1], 'tokenHash')
if not cur then return 'not_found' end
if cur ~= ARGV[1] then return 'forbidden' end
local ttl = tonumber(ARGV[2])
local at = tonumber(ARGV[3]) + ttl
redis.call('HSET', KEYS[1], 'lastSeen', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], at, ARGV[4])
local client = redis.call('HGET', KEYS[1], 'client')
if client then
  local set = ARGV[5] .. client
  redis.call('ZADD', set, at, ARGV[4])
  if redis.call('PTTL', set) < ttl then redis.call('PEXPIRE', set, ttl) end
end
return 'ok'
`;

// KEYS: peer, index, expiry. ARGV: tokenHash, member, client-set prefix.
const REMOVE = `
local cur = redis.call('HGET', KEYS[1], 'tokenHash')
if not cur then return 'not_found' end
if cur ~= ARGV[1] then return 'forbidden' end
local client = redis.call('HGET', KEYS[1], 'client')
if client then redis.call('ZREM', ARGV[3] .. client, ARGV[2]) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 'ok'
`;

// KEYS: peer. ARGV: tokenHash, sequence (20 digits), udp, udpExpires, holder, holderAddr.
// Sequences are compared as two 10-digit halves (exact in Lua's doubles, whatever the locale).
const KEEPALIVE = `
local cur = redis.call('HGET', KEYS[1], 'tokenHash')
if not cur then return 'not_found' end
if cur ~= ARGV[1] then return 'forbidden' end
local last = redis.call('HGET', KEYS[1], 'seq')
if last then
  local a, b = tonumber(string.sub(ARGV[2], 1, 10)), tonumber(string.sub(last, 1, 10))
  if a < b or (a == b and tonumber(string.sub(ARGV[2], 11)) <= tonumber(string.sub(last, 11))) then return 'stale' end
end
redis.call('HSET', KEYS[1], 'seq', ARGV[2], 'udp', ARGV[3], 'udpExpires', ARGV[4], 'holder', ARGV[5], 'holderAddr', ARGV[6])
return 'ok'
`;

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
    const sequence = /^\d{20}$/.test(h.seq ?? '') ? BigInt(h.seq!) : 0n;
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
