// The memory store's paging against a plain sort, over many random names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore } from '../../src/registry/memory-store';

test('paging returns every live peer exactly once, in key order, for any limit and prefix', async () => {
  const store = new MemoryStore();
  try {
    const names = new Set<string>();
    while (names.size < 500) names.add(Math.random().toString(36).slice(2, 2 + 1 + Math.floor(Math.random() * 6)));
    for (const name of names) {
      const r = await store.register({
        record: { name, ip: '10.0.0.1', port: 1, addresses: [], observedAddress: '10.0.0.1', publicKey: `key-${name}`, lastSeen: 0 },
        newTokenHash: 'h', ttlMs: 60_000, challenge: { id: `challenge-${name}`, expiresAt: Date.now() + 60_000 },
      });
      assert.equal(r.outcome, 'created');
    }
    for (const [limit, prefix] of [[1, ''], [7, ''], [100, ''], [1000, ''], [3, 'a'], [2, 'z9']] as const) {
      const expected = [...names].filter((n) => n.startsWith(prefix)).sort();
      const got: string[] = [];
      let after: string | null = null;
      for (let pages = 0; pages <= expected.length + 1; pages++) {
        const page = await store.list({ after, prefix, limit });
        assert.ok(page.peers.length <= limit);
        got.push(...page.peers.map((p) => p.name));
        after = page.after;
        if (after === null) break;
      }
      assert.equal(after, null, 'paging ends');
      assert.deepEqual(got, expected, `limit ${limit} prefix '${prefix}'`);
    }
  } finally {
    await store.close();
  }
});
