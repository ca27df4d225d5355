// Sizes that no UDP session can track: refused with a sentence, never with JavaScript's own
// "Invalid typed array length" (its per-chunk arrays are sized by the chunk count).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { FrameType } from '../../src/wire/frame';
import { tempDir } from '../support/cli';
import { pair, randomFile, sessionId } from './support';

const EIGHT_PIB = Number.MAX_SAFE_INTEGER; // 1 byte short of 8 PiB: the largest size the wire carries

test('a receive or a send of 8 PiB is refused in words, and the other side hears of it', async () => {
  const { dir, cleanup } = await tempDir();
  const p = await pair();
  try {
    await assert.rejects(
      p.requesterUdp.receive({ conn: p.toOwner, sessionId: sessionId(), partPath: join(dir, 'huge.part'), offset: 0, size: EIGHT_PIB }),
      (err: Error) => !(err instanceof RangeError) && /^8\.0 PiB is too large for a UDP transfer: \d+ chunks of 1200 bytes, at most 4294967295/.test(err.message),
    );
    assert.equal(p.requesterUdp.activeReceives, 0);
    const src = join(dir, 'small');
    await randomFile(src, 1000);
    const aborted = new Promise<number>((resolve) => p.requester.on(FrameType.abort, (f) => resolve(f.id)));
    const id = sessionId();
    await assert.rejects(p.ownerUdp.send({ conn: p.toRequester, sessionId: id, path: src, offset: 0, size: EIGHT_PIB, maxPayload: 1200 }), /too large for a UDP transfer/);
    assert.equal(await aborted, id >>> 0, 'the requester is told at once (ABORT), not left to its idle timeout');
    assert.equal(p.ownerUdp.activeSends, 0);
  } finally {
    await p.close();
    await cleanup();
  }
});
