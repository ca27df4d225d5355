// The UDP receiver's file writes (src/transfer/udp/run-writer.ts): chunks that trickle in, one per
// event-loop turn, are gathered into large writes (each write is a hand-off to the thread pool),
// not written one or two at a time as each write completes; the file is still byte-exact.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Receiver } from '../../src/transfer/udp/receiver';
import { tempDir } from '../support/cli';
import { pair, sessionId } from './support';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir('p2pshare-udp-writes-')));
after(async () => cleanup());

test('chunks arriving one per event-loop turn are written in runs of up to 128 KiB, not one write per turn', async () => {
  const p = await pair();
  try {
    const chunkBytes = 1200;
    const total = 400; // 480,000 bytes: 4 writes of at most 128 KiB, more if the 5 ms wait runs out
    const data = randomBytes(total * chunkBytes);
    const partPath = join(dir, 'trickle.part');
    const r = new Receiver(p.toOwner, { sessionId: sessionId(), partPath, offset: 0, size: data.length, chunkBytes, idleTimeoutMs: 10_000 }, () => {});
    for (let c = 0; c < total; c++) {
      r.onData({ packetNumber: c, chunk: c, sendTimeUs: 0, payload: data.subarray(c * chunkBytes, (c + 1) * chunkBytes) });
      await new Promise((resolve) => setImmediate(resolve));
    }
    const result = await r.promise;
    assert.deepEqual(await readFile(partPath), data);
    // Writing what arrived while the last write ran made one write every turn or two here.
    assert.ok(result.writes <= 40, `${result.writes} writes for ${total} chunks`);
  } finally {
    await p.close();
  }
});
