// jpegThumbnail in a worker thread: a large picture takes up to ~1.5 s of pure JavaScript to
// decode, and the peer that shows it must keep answering other peers meanwhile (README
// "Limits of a peer"). One worker per picture, bounded in time and heap; whatever goes wrong
// comes back as the same one-line note a failed decode gives.
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { workerSource } from '../core/worker-source';
import type { ThumbnailResult, ThumbnailSize } from './jpeg-thumbnail';

/** Set by build.mjs: jpeg-worker.ts and jpeg-js bundled into one script, run with eval. */
declare const P2PSHARE_JPEG_WORKER_SOURCE: string | undefined;

export interface WorkerLimits {
  /** The worker is stopped after this long. */
  timeoutMs: number;
  /** V8 heap of the worker (jpeg-js's pixel buffers are capped by its own maxMemoryUsageInMB). */
  maxHeapMb: number;
}

/** A 12.6 MP picture needs ~1.5 s and just over 64 MB of heap; room for a slow, busy machine. */
export const DEFAULT_WORKER_LIMITS: WorkerLimits = { timeoutMs: 20_000, maxHeapMb: 192 };

/** Never rejects: a worker that fails, runs out of heap or time gives { ok: false, note }. */
export function jpegThumbnailInWorker(data: Uint8Array, size: ThumbnailSize, limits: WorkerLimits = DEFAULT_WORKER_LIMITS): Promise<ThumbnailResult> {
  return new Promise((resolve) => {
    let worker: Worker;
    try {
      // Required here, not at start: most runs of a command that may show a picture never do.
      const { Worker: WorkerThread } = require('node:worker_threads') as typeof import('node:worker_threads');
      worker = new WorkerThread(workerSource(typeof P2PSHARE_JPEG_WORKER_SOURCE === 'string' ? P2PSHARE_JPEG_WORKER_SOURCE : undefined, join(__dirname, 'jpeg-worker.ts')), {
        eval: true,
        resourceLimits: { maxOldGenerationSizeMb: limits.maxHeapMb, maxYoungGenerationSizeMb: Math.min(16, limits.maxHeapMb) },
      });
    } catch (err) {
      resolve({ ok: false, note: `no preview: cannot start the decoder (${(err as Error).message})` });
      return;
    }
    let settled = false;
    const done = (result: ThumbnailResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, note: `no preview: decoding took over ${limits.timeoutMs / 1000} s` }), limits.timeoutMs);
    worker.once('message', (result: ThumbnailResult) => done(result));
    worker.once('error', (err: NodeJS.ErrnoException) =>
      done({ ok: false, note: err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'no preview: image too large to preview' : `no preview: ${err.message.split('\n')[0]!.slice(0, 120)}` }),
    );
    worker.once('exit', (code) => done({ ok: false, note: `no preview: the decoder stopped (exit ${code})` }));
    worker.postMessage({ data, size });
  });
}
