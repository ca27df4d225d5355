// The share list against a changing disk: links swapped in after start, files changing while
// they are hashed. Real files in a temp folder.
import assert from 'node:assert/strict';
import { mkdir, open, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { ShareIndex } from '../../src/peer/share';
import { tempDir } from '../support/cli';
import { randomFile, sha256 } from './support';

test('a shared file or folder swapped for a link leading out of the share after start is not served', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const shared = join(dir, 'shared');
    const outside = join(dir, 'outside');
    await mkdir(join(shared, 'sub'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(shared, 'a.txt'), 'public a');
    await writeFile(join(shared, 'sub', 'b.txt'), 'public b');
    await writeFile(join(outside, 'secret.txt'), 'the secret, longer than a');
    await writeFile(join(outside, 'b.txt'), 'the secret b, longer than b');
    const index = await ShareIndex.build([shared]);
    assert.deepEqual(index.list().map((f) => f.name).sort(), ['shared/a.txt', 'shared/sub/b.txt']);
    assert.ok(await index.lookup('shared/a.txt'));

    // Someone with write access to the folder swaps a file and a folder for links out of it.
    await rename(join(shared, 'a.txt'), join(dir, 'a.old'));
    await symlink(join(outside, 'secret.txt'), join(shared, 'a.txt'));
    await rename(join(shared, 'sub'), join(dir, 'sub.old'));
    await symlink(outside, join(shared, 'sub'));

    assert.equal(await index.lookup('shared/a.txt'), undefined, 'served a file outside the share through a link');
    assert.equal(await index.lookup('shared/sub/b.txt'), undefined, 'served a file outside the share through a linked folder');
  } finally {
    await cleanup();
  }
});

test('a file changed while it is being re-hashed is announced with the digest of what is on disk', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'big.bin');
    await randomFile(file, 160 * 1024 * 1024);
    const index = await ShareIndex.build([file]);
    await writeFile(file, 'x', { flag: 'a' }); // changed: the next lookup re-hashes 160 MiB
    const looking = index.lookup('big.bin');
    await sleep(30);
    // Meanwhile, the start of the file (already hashed by now) is rewritten, size unchanged.
    const fh = await open(file, 'r+');
    await fh.write(Buffer.from('rewritten while being hashed'), 0, undefined, 0);
    await fh.close();
    const entry = await looking;
    assert.ok(entry);
    assert.equal(entry.sha256, await sha256(file), 'the digest announced is not the one of the file on disk');
  } finally {
    await cleanup();
  }
});

/** Bytes this process has read through read syscalls so far (Linux /proc). */
async function bytesRead(): Promise<number> {
  const io = await readFile('/proc/self/io', 'utf8');
  return Number(/^rchar: (\d+)$/m.exec(io)![1]);
}

test('many requests for a changed file re-hash it once, not once per request', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const size = 32 * 1024 * 1024;
    const file = join(dir, 'big.bin');
    await randomFile(file, size);
    const index = await ShareIndex.build([file]);
    await writeFile(file, 'x', { flag: 'a' });
    const before = await bytesRead();
    // What a burst of GET_REQUESTs (one hostile requester, fresh session IDs) makes the owner do.
    const entries = await Promise.all(Array.from({ length: 8 }, () => index.lookup('big.bin')));
    const read = (await bytesRead()) - before;
    const digest = await sha256(file);
    for (const e of entries) assert.equal(e?.sha256, digest);
    assert.ok(read < 2 * size, `read ${Math.round(read / 1024 / 1024)} MiB to re-hash a ${size / 1024 / 1024} MiB file for 8 requests`);
  } finally {
    await cleanup();
  }
});
