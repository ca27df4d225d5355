// A UDP receive from offset 0 hashes the file as its chunks arrive (transfer/udp/in-order-hash.ts),
// so the requester need not read it again: in order, out of order, through loss and reordering,
// and giving up (the caller then reads the file) when too much overtakes a gap.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { InOrderHash } from '../../src/transfer/udp/in-order-hash';
import { tempDir } from '../support/cli';
import { pair, randomFile, transfer } from './support';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function chunksOf(data: Buffer, size: number): Buffer[] {
  return Array.from({ length: Math.ceil(data.length / size) }, (_, i) => data.subarray(i * size, (i + 1) * size));
}

test('the digest of chunks added in order, shuffled, or with gaps filled late, is the whole file\'s', () => {
  const data = randomBytes(100 * 1000 + 7);
  const chunks = chunksOf(data, 1000);
  const inOrder = new InOrderHash(chunks.length, 1 << 20);
  chunks.forEach((c, i) => inOrder.add(i, c));
  assert.equal(inOrder.digest(), sha(data));
  let seed = 5;
  const order = chunks.map((_, i) => i).sort(() => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 3) - 1);
  assert.notDeepEqual(order, chunks.map((_, i) => i), 'really shuffled');
  const shuffled = new InOrderHash(chunks.length, 1 << 20);
  for (const i of order) shuffled.add(i, chunks[i]!);
  assert.equal(shuffled.digest(), sha(data));
});

test('a missing chunk gives no digest; more held than its bound gives up (no digest, the file is read instead)', () => {
  const chunks = chunksOf(randomBytes(50 * 1000), 1000);
  const missing = new InOrderHash(chunks.length, 1 << 20);
  chunks.forEach((c, i) => i !== 17 && missing.add(i, c));
  assert.equal(missing.digest(), undefined);
  const bounded = new InOrderHash(chunks.length, 10 * 1000);
  chunks.forEach((c, i) => i !== 0 && bounded.add(i, c)); // 49 chunks overtake chunk 0
  bounded.add(0, chunks[0]!);
  assert.equal(bounded.digest(), undefined, 'gave up past 10 kB held');
});

test('a UDP receive through loss and reordering carries the SHA-256 of what it wrote; a resumed one carries none', async () => {
  const { dir, cleanup } = await tempDir();
  const p = await pair({ toClient: { lossPercent: 3, reorderPercent: 10, reorderDelayMs: 5, seed: 21 } });
  try {
    const path = join(dir, 'src.bin');
    await randomFile(path, 6 * 1024 * 1024 + 11);
    const data = await readFile(path);
    const whole = await transfer(p, path, data.length, dir, { hash: true });
    assert.ok(p.relay!.counters.toClient.lost > 0 && p.relay!.counters.toClient.reordered > 0, 'chunks were lost and reordered');
    assert.ok((await readFile(whole.partPath)).equals(data), 'byte-exact');
    assert.equal(whole.received.sha256, sha(data), 'hashed on the way');
    const resumed = await transfer(p, path, data.length, dir, { hash: true, offset: 1000 });
    assert.equal(resumed.received.sha256, undefined, 'from an offset: the caller reads the file');
  } finally {
    await p.close();
    await cleanup();
  }
});
