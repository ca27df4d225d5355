// The Redis store's key names (redis-store.ts has the layout). On one Redis they are the plain
// names they always were. On a Redis Cluster every name belongs to one of CLUSTER_SHARDS shards
// (a hash of the name), and a shard's keys share the hash tag {s<N>}: a name's record, the
// shard's listing index and expiry set, and the challenges used for it sit in one slot, so each
// Lua step on them is atomic there; the shards spread over every master, so no slot is hot.
// A client's name set has a tag of its own ({c<client>}). Pure.

/** Shards of a Cluster layout: enough that 3-16 masters each hold many, few enough to sweep them all every second. */
export const CLUSTER_SHARDS = 64;

/** FNV-1a (32 bits) of a name key: which shard it is in. */
export function shardOf(key: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

export class RedisKeys {
  /** 1 on one Redis (no hash tags), CLUSTER_SHARDS on a cluster. */
  readonly shards: number;

  constructor(
    readonly prefix: string,
    readonly cluster: boolean,
  ) {
    // Redis hashes the first {...} of a key: braces in the prefix would put every shard in one
    // slot, or ('{}') hash whole keys, so that one script's keys are in different slots (CROSSSLOT).
    if (cluster && /[{}]/.test(prefix)) throw new RangeError(`a Redis Cluster key prefix may not contain '{' or '}', got '${prefix}'`);
    this.shards = cluster ? CLUSTER_SHARDS : 1;
  }

  shard(key: string): number {
    return this.cluster ? shardOf(key, this.shards) : 0;
  }

  /** The start of every key of shard `s`. */
  private base(s: number): string {
    return this.cluster ? `${this.prefix}{s${s}}:` : this.prefix;
  }

  peer(key: string): string {
    return `${this.base(this.shard(key))}peer:${key}`;
  }

  index(s: number): string {
    return `${this.base(s)}index`;
  }

  expiry(s: number): string {
    return `${this.base(s)}expiry`;
  }

  /** A used challenge, in the shard of the name it registered. */
  used(key: string, challengeId: string): string {
    return `${this.base(this.shard(key))}used:${challengeId}`;
  }

  /** What the client set names start with (the Lua scripts append the client). */
  get clientPrefix(): string {
    return `${this.prefix}client:`;
  }

  client(client: string): string {
    return this.cluster ? `${this.clientPrefix}{c${client}}` : this.clientPrefix + client;
  }

  get secret(): string {
    return `${this.prefix}secret`;
  }
}

/**
 * A listing position on a cluster: the shard and the last key listed in it ('' = from its start),
 * written `<shard>:<key>` (a name has no ':'). On one Redis the position is the key alone.
 */
export function parseShardCursor(after: string | null, shards: number): { shard: number; key: string | null } {
  if (after === null) return { shard: 0, key: null };
  const m = /^(\d{1,4}):(.*)$/.exec(after);
  if (!m || Number(m[1]) >= shards) return { shard: 0, key: null };
  return { shard: Number(m[1]), key: m[2] || null };
}
