// The UDP sender's view of a file as chunks: batches read ahead into two buffers used in turn,
// retransmissions from the current batch or read on their own. Every chunk must be the file's
// bytes at its place, whichever way it came and however many batches were read since.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ChunkReader } from '../../src/transfer/udp/reader';
import { tempDir } from '../support/cli';
import { seededRandom } from '../support/random';

test('chunks from batches and retransmissions are the file bytes at their place, across many batches and an offset', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const chunkBytes = 1000;
  const data = randomBytes(256 * chunkBytes * 5 + 777); // five full batches and a short one
  const path = join(dir, 'f.bin');
  await writeFile(path, data);
  for (const offset of [0, 123_457]) {
    const total = Math.ceil((data.length - offset) / chunkBytes);
    const reader = new ChunkReader(path, offset, data.length, chunkBytes, total);
    await reader.open();
    const expected = (c: number) => data.subarray(offset + c * chunkBytes, Math.min(offset + (c + 1) * chunkBytes, data.length));
    const random = seededRandom(offset + 1);
    try {
      for (let c = 0; c < total; ) {
        const b = await reader.batchFor(c);
        for (; c < b.first + b.count; c++) {
          assert.deepEqual(b.get(c), expected(c), `chunk ${c} from its batch`);
          // A retransmission of any chunk so far, used at once as the sender does.
          if (random() < 0.05) {
            const old = Math.floor(random() * (c + 1));
            assert.deepEqual(await reader.chunk(old), expected(old), `chunk ${old} again, at ${c}`);
          }
        }
      }
      assert.equal(reader.chunkLength(total - 1), expected(total - 1).length, 'the last chunk is short');
    } finally {
      await reader.close();
    }
  }
});
