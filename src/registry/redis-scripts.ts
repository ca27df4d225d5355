// The Redis store's Lua scripts (redis-store.ts has the key layout): each is one atomic step,
// however many registries share the Redis.

/** Expired members removed by each registration (bounded work per write). */
const PRUNE_ON_WRITE = 100;
/** Expired members removed per script call of the sweep (the sweep loops until none is left). */
export const SWEEP_BATCH = 1000;

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

// KEYS: peer, index, expiry, used, and on one Redis the client set. ARGV: newHash, ttlMs, member,
// now, name, publicKey, usedTtlMs, maxPeers, maxPerClient, client, client-set prefix, then the
// other field/value pairs.
// A live record bound to another key is taken; one bound to the same key is reclaimed: every
// field but the name is replaced, the new token hash among them, so the old token stops working.
// A record without a publicKey (written before keys) counts as free. A new name is refused when
// the expiry set holds maxPeers live ones; any name when its client holds maxPerClient others.
// On a cluster the client set is in another slot: the store reserves the name in it first
// (CLIENT_RESERVE) and moves it from the old client's set with the third value returned.
// Returns {outcome, name or wait, the client that held the name before ('' if none)}.
export const REGISTER = `${PRUNE_FN}
if redis.call('EXISTS', KEYS[4]) == 1 then return {'challenge_used', '', ''} end
local now = tonumber(ARGV[4])
local ttl = tonumber(ARGV[2])
local cur = redis.call('HGET', KEYS[1], 'publicKey')
local outcome = 'created'
if cur then
  if cur ~= ARGV[6] then return {'taken', '', ''} end
  outcome = 'reclaimed'
end
prune(KEYS[2], KEYS[3], now, ${PRUNE_ON_WRITE})
if KEYS[5] then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  if not redis.call('ZSCORE', KEYS[5], ARGV[3]) and redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[9]) then
    local first = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
    return {'client_full', tostring(tonumber(first[2]) - now), ''}
  end
end
if outcome == 'created' and redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf') >= tonumber(ARGV[8]) then
  return {'full', '', ''}
end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[7])
redis.call('HDEL', KEYS[1], ${KEEPALIVE_FIELDS}, 'clientUntil')
if outcome == 'created' then redis.call('HSET', KEYS[1], 'name', ARGV[5]) end
local old = redis.call('HGET', KEYS[1], 'client') or ''
if KEYS[5] and old ~= '' and old ~= ARGV[10] then redis.call('ZREM', ARGV[11] .. old, ARGV[3]) end
redis.call('HSET', KEYS[1], 'tokenHash', ARGV[1], 'publicKey', ARGV[6], 'client', ARGV[10], unpack(ARGV, 12))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('ZADD', KEYS[3], now + ttl, ARGV[3])
if KEYS[5] then
  redis.call('ZADD', KEYS[5], now + ttl, ARGV[3])
  if redis.call('PTTL', KEYS[5]) < ttl then redis.call('PEXPIRE', KEYS[5], ttl) end
end
return {outcome, redis.call('HGET', KEYS[1], 'name'), old}
`;

// Cluster only. KEYS: client set. ARGV: member, now, ttlMs, maxPerClient.
// Holds the member in its client's set for ttlMs (the cap counted in one atomic step, however
// many registrations race): 'held' when it was there already, 'added' when this call added it
// (the store takes it out again if the registration then fails), or client_full with the wait.
export const CLIENT_RESERVE = `
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local outcome = 'held'
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {'client_full', tostring(tonumber(first[2]) - now)}
  end
  outcome = 'added'
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return {outcome, ''}
`;

// Cluster only. KEYS: client set. ARGV: member, new expiry, ttlMs. A heartbeat's renewal of the
// member in its client's set (only if it is still there, never moved back; HEARTBEAT says when).
export const CLIENT_TOUCH = `
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not at or tonumber(at) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`;

// KEYS: index, expiry. ARGV: now, batch. Returns {how many expired members it removed, how many
// live ones are left}.
export const SWEEP = `${PRUNE_FN}
local removed = prune(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {removed, redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')}
`;

// KEYS: index, expiry. ARGV: from, to (ZRANGEBYLEX bounds), want, budget, now.
// Walks the index from `from`, examining at most `budget` members, and returns up to `want` of
// them whose expiry is still ahead; the expired ones it met leave the index and the expiry set.
// Returns {live members, the last member examined (or ''), 1 if the range ended else 0}.
export const WALK = `
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
export const SECRET = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`;

// KEYS: peer, expiry. ARGV: tokenHash, ttlMs, now, member, client-set prefix ('' on a cluster,
// where the store renews the client set itself). Returns {outcome, the record's client or ''}.
// On a cluster that renewal is a second command, so it is asked for only when due: the member is
// renewed for two TTLs (the record's clientUntil) and again once less than one TTL is left, so
// it always outlives the record, and a peer beating every third of a TTL renews it every third
// beat; a dead peer's name then counts for its client up to two TTLs after its last beat.
// Returns {outcome, the client to renew or '', the renewal's expiry}.
export const HEARTBEAT = `
local cur = redis.call('HGET', KEYS[1], 'tokenHash')
if not cur then return {'not_found', ''} end
if cur ~= ARGV[1] then return {'forbidden', ''} end
local ttl = tonumber(ARGV[2])
local at = tonumber(ARGV[3]) + ttl
redis.call('HSET', KEYS[1], 'lastSeen', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], at, ARGV[4])
local client = redis.call('HGET', KEYS[1], 'client') or ''
if client == '' then return {'ok', ''} end
if ARGV[5] ~= '' then
  local set = ARGV[5] .. client
  redis.call('ZADD', set, at, ARGV[4])
  if redis.call('PTTL', set) < ttl then redis.call('PEXPIRE', set, ttl) end
  return {'ok', client}
end
if tonumber(redis.call('HGET', KEYS[1], 'clientUntil') or '0') >= at then return {'ok', ''} end
local lease = at + ttl
redis.call('HSET', KEYS[1], 'clientUntil', lease)
return {'ok', client, tostring(lease)}
`;

// KEYS: peer, index, expiry. ARGV: tokenHash, member, client-set prefix ('' on a cluster).
// Returns {outcome, the record's client or ''}.
export const REMOVE = `
local cur = redis.call('HGET', KEYS[1], 'tokenHash')
if not cur then return {'not_found', ''} end
if cur ~= ARGV[1] then return {'forbidden', ''} end
local client = redis.call('HGET', KEYS[1], 'client') or ''
if client ~= '' and ARGV[3] ~= '' then redis.call('ZREM', ARGV[3] .. client, ARGV[2]) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return {'ok', client}
`;

// KEYS: peer. ARGV: tokenHash, sequence (20 digits), udp, udpExpires, holder, holderAddr.
// Sequences are compared as two 10-digit halves (exact in Lua's doubles, whatever the locale).
export const KEEPALIVE = `
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
