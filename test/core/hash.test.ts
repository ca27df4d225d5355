import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sha256File } from '../../src/core/hash';

test('sha256File is the SHA-256 of the whole file: empty, below, at and across its 1 MiB reads', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'p2pshare-hash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const size of [0, 1, 1024 * 1024 - 1, 1024 * 1024, 3 * 1024 * 1024 + 17]) {
    const data = randomBytes(size);
    const path = join(dir, `f${size}`);
    await writeFile(path, data);
    assert.equal(await sha256File(path), createHash('sha256').update(data).digest('hex'), `${size} bytes`);
  }
  await assert.rejects(sha256File(join(dir, 'missing')), { code: 'ENOENT' });
});
