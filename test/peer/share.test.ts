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

test('scan lists every file at once, the background hashes them all with their real digests', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const root = join(dir, 'tree');
    const digests = new Map<string, string>();
    for (let i = 0; i < 40; i++) digests.set(`tree/d${i % 4}/f${i}.bin`, await randomFile(join(root, `d${i % 4}`, `f${i}.bin`), i * 1000));
    const index = await ShareIndex.scan([root], dir);
    assert.equal(index.list().length, 40);
    const names = index.list().map((f) => f.name);
    assert.deepEqual(names, [...names].sort(), 'listed in name order');
    await index.hashed;
    assert.equal(index.pending, 0);
    assert.equal(index.failed, 0);
    for (const f of index.list()) assert.equal(f.sha256, digests.get(f.name), f.name);
    assert.equal(index.hashedBytes, index.totalBytes);
  } finally {
    await cleanup();
  }
});

test('a file gone before it was hashed is not served and stays without a digest', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await mkdir(join(dir, 's'));
    await writeFile(join(dir, 's', 'stays.txt'), 'here');
    await writeFile(join(dir, 's', 'goes.txt'), 'gone soon');
    const index = await ShareIndex.scan([join(dir, 's')], dir, { backgroundHashes: 0 });
    await rename(join(dir, 's', 'goes.txt'), join(dir, 'elsewhere.txt'));
    assert.equal(await index.lookup('s/goes.txt'), undefined);
    assert.ok(await index.lookup('s/stays.txt'), 'hashed on demand');
    assert.equal(index.pending, 1);
    assert.equal(index.list().find((f) => f.name === 's/goes.txt')?.sha256, null);
  } finally {
    await cleanup();
  }
});

test('close() stops the background hashing', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await mkdir(join(dir, 'many'));
    for (let i = 0; i < 2000; i++) await writeFile(join(dir, 'many', `f${i}`), '');
    const index = await ShareIndex.scan([join(dir, 'many')], dir, { backgroundHashes: 1 });
    index.close();
    await index.hashed;
    const left = index.pending;
    assert.ok(left > 0, 'everything hashed before close() returned');
    await sleep(50);
    assert.equal(index.pending, left, 'hashing went on after close()');
  } finally {
    await cleanup();
  }
});
