// The worker thread's side of jpegThumbnailInWorker (thumbnail-worker.ts): one job per worker,
// the file's bytes in, a small thumbnail (or a note) out.
import { parentPort } from 'node:worker_threads';
import { jpegThumbnail, type ThumbnailSize } from './jpeg-thumbnail';

parentPort?.once('message', (job: { data: Uint8Array; size: ThumbnailSize }) => {
  const result = jpegThumbnail(job.data, job.size);
  parentPort!.postMessage(result, result.ok ? [result.rgb.buffer as ArrayBuffer] : []);
});
