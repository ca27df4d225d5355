// What --redis names: one Redis, or a cluster's seed nodes (README.md, "Redis Cluster"); and the
// cluster key layout's shards. Pure functions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRedisTarget } from '../../src/registry/redis-target';
import { CLUSTER_SHARDS, RedisKeys, parseShardCursor, shardOf } from '../../src/registry/redis-keys';

test('--redis: a redis:// URL is one Redis, redis-cluster:// a list of seed nodes', () => {
  assert.deepEqual(parseRedisTarget('redis://127.0.0.1:6379/0'), { kind: 'single', url: 'redis://127.0.0.1:6379/0' });
  assert.deepEqual(parseRedisTarget('redis-cluster://10.0.0.1:7000,10.0.0.2:7001'), {
    kind: 'cluster', tls: false, nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }],
  });
  assert.deepEqual(parseRedisTarget('rediss-cluster://app:s%3Acret@[2001:db8::1]:7000,redis.example:7001/'), {
    kind: 'cluster', tls: true, username: 'app', password: 's:cret', nodes: [{ host: '2001:db8::1', port: 7000 }, { host: 'redis.example', port: 7001 }],
  });
  assert.equal((parseRedisTarget('redis-cluster://:pw@h:1') as { password?: string; username?: string }).password, 'pw');
  for (const bad of ['redis-cluster://', 'redis-cluster://host', 'redis-cluster://h:0', 'redis-cluster://h:70000', 'redis-cluster://h:1,h2']) {
    assert.throws(() => parseRedisTarget(bad), RangeError, bad);
  }
});

test('cluster keys: one hash tag per shard, the names spread evenly over the shards, cursors name the shard', () => {
  const k = new RedisKeys('p2pshare:', true);
  const s = k.shard('alice');
  assert.equal(k.peer('alice'), `p2pshare:{s${s}}:peer:alice`);
  assert.equal(k.index(s), `p2pshare:{s${s}}:index`);
  assert.equal(k.used('alice', 'ab'), `p2pshare:{s${s}}:used:ab`);
  assert.equal(k.client('10.0.0.1'), 'p2pshare:client:{c10.0.0.1}');
  // One Redis keeps the names it always had.
  const one = new RedisKeys('p2pshare:', false);
  assert.deepEqual([one.peer('alice'), one.index(0), one.expiry(0), one.used('alice', 'ab'), one.client('10.0.0.1')],
    ['p2pshare:peer:alice', 'p2pshare:index', 'p2pshare:expiry', 'p2pshare:used:ab', 'p2pshare:client:10.0.0.1']);
  const counts = new Array<number>(CLUSTER_SHARDS).fill(0);
  for (let i = 0; i < 64_000; i++) counts[shardOf(`peer${i}`, CLUSTER_SHARDS)]!++;
  assert.ok(Math.max(...counts) < 1.2 * 1000 && Math.min(...counts) > 0.8 * 1000, `shard sizes ${Math.min(...counts)}..${Math.max(...counts)}`);
  assert.deepEqual(parseShardCursor('12:bob', CLUSTER_SHARDS), { shard: 12, key: 'bob' });
  assert.deepEqual(parseShardCursor('12:', CLUSTER_SHARDS), { shard: 12, key: null });
  assert.deepEqual(parseShardCursor(null, CLUSTER_SHARDS), { shard: 0, key: null });
  assert.deepEqual(parseShardCursor('99:bob', CLUSTER_SHARDS), { shard: 0, key: null });
});

test('cluster keys: a prefix with braces is refused (its braces would be the hash tag, not the shard\'s)', () => {
  for (const bad of ['{p}:', 'p{:', '}p:', '{}p:']) assert.throws(() => new RedisKeys(bad, true), RangeError, bad);
  assert.equal(new RedisKeys('{p}:', false).peer('a'), '{p}:peer:a', 'one Redis has no slots: any prefix');
});
