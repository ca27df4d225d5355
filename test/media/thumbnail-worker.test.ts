// The JPEG preview decodes in a worker thread (src/media/thumbnail-worker.ts): while a large
// picture decodes, this thread keeps running its timers (an interactive peer keeps serving), the
// result is the one an in-thread decode gives, and a decode past its time or heap limit, or of a
// bad file, ends in the same one-line note. Timings are only compared with each other.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import jpeg from 'jpeg-js';
import { jpegThumbnail } from '../../src/media/jpeg-thumbnail';
import { jpegThumbnailInWorker } from '../../src/media/thumbnail-worker';

const SIZE = { maxColumns: 64, maxRows: 64 };

/** A photo-like 2400 x 1800 JPEG (4.3 MP): smooth shading with some grain, so it decodes like one. */
function bigJpeg(): Buffer {
  const width = 2400;
  const height = 1800;
  const data = Buffer.alloc(width * height * 4);
  let seed = 7;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const i = (y * width + x) * 4;
      const grain = (seed >>> 28) - 8;
      data[i] = (x / 10 + grain) & 255;
      data[i + 1] = (y / 8 + grain) & 255;
      data[i + 2] = ((x + y) / 20 + grain) & 255;
      data[i + 3] = 255;
    }
  }
  return jpeg.encode({ data, width, height }, 85).data;
}

const big = bigJpeg();

/** Runs fn while a 1 ms interval ticks; returns fn's result, how long it took and the longest gap between ticks. */
async function withTicker<T>(fn: () => T | Promise<T>): Promise<{ result: T; ms: number; maxGapMs: number; ticks: number }> {
  let last = performance.now();
  let maxGapMs = 0;
  let ticks = 0;
  const tick = (): void => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    ticks++;
  };
  const timer = setInterval(tick, 1);
  const t0 = performance.now();
  try {
    const result = await fn();
    const ms = performance.now() - t0;
    await new Promise((r) => setImmediate(r));
    tick(); // the gap up to the end counts too
    return { result, ms, maxGapMs, ticks };
  } finally {
    clearInterval(timer);
  }
}

test('a large JPEG decodes in the worker while this thread keeps running timers; same pixels as an in-thread decode', async () => {
  // The fault the worker removes: decoded in this thread, the ticker stops for the whole decode.
  const inThread = await withTicker(() => jpegThumbnail(big, SIZE));
  assert.ok(inThread.result.ok);
  assert.ok(inThread.maxGapMs >= 0.8 * inThread.ms, `in-thread decode of ${inThread.ms.toFixed(0)} ms left a gap of only ${inThread.maxGapMs.toFixed(0)} ms`);

  const inWorker = await withTicker(() => jpegThumbnailInWorker(big, SIZE));
  assert.deepEqual(inWorker.result, inThread.result);
  // Responsive relative to the decode: no pause near the length of the decode itself.
  assert.ok(
    inWorker.maxGapMs < inThread.ms / 4,
    `longest pause ${inWorker.maxGapMs.toFixed(0)} ms while the worker decoded (${inWorker.ms.toFixed(0)} ms); in-thread decode ${inThread.ms.toFixed(0)} ms`,
  );
  assert.ok(inWorker.ticks >= 10, `only ${inWorker.ticks} ticks in ${inWorker.ms.toFixed(0)} ms`);
});

test('past its time limit or its heap limit the worker is stopped and the preview is a one-line note', async () => {
  const slow = await jpegThumbnailInWorker(big, SIZE, { timeoutMs: 1, maxHeapMb: 192 });
  assert.deepEqual(slow, { ok: false, note: 'no preview: decoding took over 0.001 s' });
  const starved = await jpegThumbnailInWorker(big, SIZE, { timeoutMs: 60_000, maxHeapMb: 4 });
  assert.deepEqual(starved, { ok: false, note: 'no preview: image too large to preview' });
});

test('a bad file gives the same note from the worker as from an in-thread decode', async () => {
  const cut = big.subarray(0, big.length >> 1);
  const notJpeg = Buffer.from('hello, not a picture');
  const corrupt = Buffer.from(big);
  corrupt.fill(0xff, 2000, 2600); // entropy data turned into a run of fill bytes
  for (const bytes of [cut, notJpeg, corrupt]) {
    const inThread = jpegThumbnail(bytes, SIZE);
    assert.equal(inThread.ok, false);
    assert.deepEqual(await jpegThumbnailInWorker(bytes, SIZE), inThread);
  }
});
