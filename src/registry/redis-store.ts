// Redis store (ioredis). Layout, every key under the prefix (default "p2pshare:"):
//   {prefix}peer:{key}   hash {name, ip, port, addresses(JSON), observedAddress, publicKey,
//                        lastSeen, tokenHash}, expired by Redis itself (PEXPIRE = ttl, renewed
//                        by each heartbeat)
//   {prefix}index        sorted set, all scores 0: the keys in lexical order, for paged listing
//   {prefix}expiry       sorted set, score = expiry time: lets the index be pruned and counted
//   {prefix}secret       the deployment's secret (hex), set once by whichever registry is first
//   {prefix}used:{id}    a challenge that served a registration, until the challenge expires
// Registration, heartbeat and removal are Lua scripts, so each is one atomic step however many
// registries share the Redis. Listing walks the index with ZRANGE BYLEX (never KEYS).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { ListPage, OwnerResult, PeerRecord, PeerStore, RegisterInput, RegisterResult } from './store';
import { StoreUnavailableError } from './store';

// KEYS: peer, index, expiry, used. ARGV: newHash, ttlMs, member, now, name, publicKey,
// usedTtlMs, then the other field/value pairs.
// A live record bound to another key is taken; one bound to the same key is reclaimed: every
// field but the name is replaced, the new token hash among them, so the old token stops working.
// A record without a publicKey (written before keys) counts as free.
const REGISTER = `
if redis.call('EXISTS', KEYS[4]) == 1 then return {'challenge_used', ''} end
local cur = redis.call('HGET', KEYS[1], 'publicKey')
local outcome = 'created'
if cur then
  if cur ~= ARGV[6] then return {'taken', ''} end
  outcome = 'reclaimed'
else
  redis.call('HSET', KEYS[1], 'name', ARGV[5])
end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[7])
redis.call('HSET', KEYS[1], 'tokenHash', ARGV[1], 'publicKey', ARGV[6], unpack(ARGV, 8))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local now = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[3])
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 20)
for _, m in ipairs(dead) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('ZREM', KEYS[3], m)
end
return {outcome, redis.call('HGET', KEYS[1], 'name')}
`;

// KEYS: secret. ARGV: a fresh secret (hex), kept only if there is none yet.
const SECRET = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`;

// KEYS: peer, expiry. ARGV: tokenHash, ttlMs, now, member.
const HEARTBEAT = `
local cur = redis.call('HGET', KEYS[1], 'tokenHash')
if not cur then return 'not_found' end
if cur ~= ARGV[1] then return 'forbidden' end
redis.call('HSET', KEYS[1], 'lastSeen', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[4])
return 'ok'
`;

// KEYS: peer, index, expiry. ARGV: tokenHash, member.
const REMOVE = `
local cur = redis.call('HGET', KEYS[1], 'tokenHash')
if not cur then return 'not_found' end
if cur ~= ARGV[1] then return 'forbidden' end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 'ok'
`;

type Scripted = Redis & {
  p2pRegister(...args: Array<string | number>): Promise<[string, string]>;
  p2pHeartbeat(...args: Array<string | number>): Promise<string>;
  p2pRemove(...args: Array<string | number>): Promise<string>;
  p2pSecret(...args: Array<string | number>): Promise<string>;
};

export interface RedisStoreOptions {
  url: string;
  prefix?: string;
  /** A command not answered within this many ms fails (the server then answers 503). */
  commandTimeoutMs?: number;
}

export class RedisStore implements PeerStore {
  readonly kind = 'redis' as const;
  private readonly redis: Scripted;
  private readonly prefix: string;
  private lastError = '';

  constructor(opts: RedisStoreOptions) {
    this.prefix = opts.prefix ?? 'p2pshare:';
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
    redis.defineCommand('p2pRegister', { numberOfKeys: 4, lua: REGISTER });
    redis.defineCommand('p2pHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT });
    redis.defineCommand('p2pRemove', { numberOfKeys: 3, lua: REMOVE });
    redis.defineCommand('p2pSecret', { numberOfKeys: 1, lua: SECRET });
    this.redis = redis as Scripted;
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
    const [outcome, name] = await this.call(() =>
      this.redis.p2pRegister(
        this.peerKey(key), this.indexKey, this.expiryKey, `${this.prefix}used:${input.challenge.id}`,
        input.newTokenHash, input.ttlMs, key, now, r.name, r.publicKey, Math.max(1, input.challenge.expiresAt - now),
        'ip', r.ip, 'port', r.port, 'addresses', JSON.stringify(r.addresses),
        'observedAddress', r.observedAddress, 'lastSeen', r.lastSeen,
      ),
    );
    if (outcome === 'taken' || outcome === 'challenge_used') return { outcome };
    return { outcome: outcome === 'reclaimed' ? 'reclaimed' : 'created', name };
  }

  async heartbeat(key: string, tokenHash: string, ttlMs: number, now: number): Promise<OwnerResult> {
    const out = await this.call(() => this.redis.p2pHeartbeat(this.peerKey(key), this.expiryKey, tokenHash, ttlMs, now, key));
    return out as OwnerResult;
  }

  async remove(key: string, tokenHash: string): Promise<OwnerResult> {
    const out = await this.call(() => this.redis.p2pRemove(this.peerKey(key), this.indexKey, this.expiryKey, tokenHash, key));
    return out as OwnerResult;
  }

  async get(key: string): Promise<PeerRecord | null> {
    const h = await this.call(() => this.redis.hgetall(this.peerKey(key)));
    return toRecord(h);
  }

  async list(opts: { after: string | null; prefix: string; limit: number }): Promise<ListPage> {
    const peers: ListPage['peers'] = [];
    let from = opts.after !== null ? `(${opts.after}` : `[${opts.prefix}`;
    if (opts.after !== null && opts.after < opts.prefix) from = `[${opts.prefix}`;
    const to = opts.prefix ? `(${opts.prefix}\x7f` : '+';
    const batch = Math.min(opts.limit + 1, 500);
    let scanned: string | null = null;
    // Index entries whose peer key Redis has expired are skipped (and pruned by registrations).
    for (let rounds = 0; rounds < 100; rounds++) {
      const members = await this.call(() => this.redis.zrangebylex(this.indexKey, from, to, 'LIMIT', 0, batch));
      if (members.length === 0) break;
      const pipe = this.redis.pipeline();
      for (const m of members) pipe.hmget(this.peerKey(m), 'name', 'lastSeen', 'publicKey');
      const rows = await this.call(() => pipe.exec());
      for (let i = 0; i < members.length; i++) {
        const [err, vals] = rows![i]!;
        if (err) throw new StoreUnavailableError(`redis: ${err.message}`);
        const [name, lastSeen, publicKey] = vals as [string | null, string | null, string | null];
        if (name === null || lastSeen === null || publicKey === null) continue;
        if (peers.length === opts.limit) return { peers, after: peers.length ? peers[peers.length - 1]!.name.toLowerCase() : null };
        peers.push({ name, publicKey, lastSeen: Number(lastSeen) });
      }
      if (members.length < batch) return { peers, after: null };
      scanned = members[members.length - 1]!;
      from = `(${scanned}`;
    }
    // Bounded work per request: past many expired entries, hand back a cursor to continue from.
    return { peers, after: scanned };
  }

  async count(): Promise<number> {
    return this.call(() => this.redis.zcount(this.expiryKey, `(${Date.now()}`, '+inf'));
  }

  async ping(): Promise<void> {
    await this.call(() => this.redis.ping());
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

function toRecord(h: Record<string, string>): PeerRecord | null {
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
  };
}
