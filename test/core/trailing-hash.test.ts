// TrailingFileHash (src/core/trailing-hash.ts): a worker hashes a file as far as it is written,
// through a real worker thread on a real file; when the worker is gone or stalls, the file is
// hashed on this thread instead, and the digest is the same.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TrailingFileHash } from '../../src/core/trailing-hash';

const MiB = 1024 * 1024;
const hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

async function tempFolder(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'p2pshare-trailing-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('the digest of a file written piece by piece, the worker told after each piece (steps below, at and across its 8 MiB)', async (t) => {
  const dir = await tempFolder(t);
  const data = randomBytes(21 * MiB + 333);
  const path = join(dir, 'growing');
  await writeFile(path, '');
  const hash = new TrailingFileHash(path);
  for (let at = 0; at < data.length; ) {
    const piece = Math.min(data.length - at, [64 * 1024, 3 * MiB, 8 * MiB + 1][at % 3]!);
    await appendFile(path, data.subarray(at, at + piece));
    at += piece;
    hash.advance(at);
  }
  assert.equal(await hash.digest(data.length), hex(data));
  await new Promise((resolve) => setTimeout(resolve, 50)); // the worker's exit comes after
  assert.equal(hash.workerFailure, undefined, 'the worker hashed it');
});

test('a resumed file: the prefix already there is told at once, the rest as it comes; sizes 0 and 1 too', async (t) => {
  const dir = await tempFolder(t);
  const data = randomBytes(17 * MiB);
  const path = join(dir, 'resumed');
  await writeFile(path, data.subarray(0, 12 * MiB));
  const hash = new TrailingFileHash(path);
  hash.advance(12 * MiB);
  await appendFile(path, data.subarray(12 * MiB));
  assert.equal(await hash.digest(data.length), hex(data));
  for (const size of [0, 1]) {
    const small = join(dir, `small-${size}`);
    const bytes = randomBytes(size);
    await writeFile(small, bytes);
    const h = new TrailingFileHash(small);
    assert.equal(await h.digest(size), hex(bytes), `${size} bytes`);
    assert.equal(h.workerFailure, undefined);
  }
});

test('only the bytes told are hashed: bytes past the size given to digest() are not', async (t) => {
  const dir = await tempFolder(t);
  const data = randomBytes(3 * MiB);
  const path = join(dir, 'longer');
  await writeFile(path, data);
  const hash = new TrailingFileHash(path);
  assert.equal(await hash.digest(2 * MiB), hex(data.subarray(0, 2 * MiB)));
});

test('a worker that fails (the file is shorter than told) or was stopped: the digest is the file hashed here', async (t) => {
  const dir = await tempFolder(t);
  const data = randomBytes(10 * MiB);
  const path = join(dir, 'shrinks');
  await writeFile(path, data);
  const short = new TrailingFileHash(path);
  await truncate(path, 4 * MiB); // the fault: the worker is told of bytes that are not there
  assert.equal(await short.digest(data.length), hex(data.subarray(0, 4 * MiB)), 'what the file holds, read here');
  assert.match(short.workerFailure ?? '', /ends at 4194304 bytes, before 10485760/);

  await writeFile(path, data);
  const stopped = new TrailingFileHash(path);
  stopped.advance(8 * MiB);
  stopped.close();
  assert.equal(await stopped.digest(data.length), hex(data));
  assert.equal(stopped.workerFailure, 'closed');
});

test('a worker that does not answer within its stall limit is given up, and the file is hashed here', async (t) => {
  const dir = await tempFolder(t);
  const data = randomBytes(64 * MiB);
  const path = join(dir, 'slow');
  await writeFile(path, data);
  // 1 ms: no worker starts, reads and hashes 64 MiB that fast (about 50 ms on this machine).
  const hash = new TrailingFileHash(path, 1);
  assert.equal(await hash.digest(data.length), hex(data));
  assert.match(hash.workerFailure ?? '', /^no answer for 0\.001 s$/);
});
