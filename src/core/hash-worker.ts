// The worker thread's side of TrailingFileHash (trailing-hash.ts): the SHA-256 of a file read
// back from disk, as far as the main thread says its bytes are final. Each message moves that
// mark ({ upTo }); the last one also ends the file ({ upTo, end: true }) and gets the digest.
// Every message is answered: { hashed } after it, { sha256 } at the end, { error } on a failure.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const READ_BYTES = 1024 * 1024;

const { path } = workerData as { path: string };
const hash = createHash('sha256');
// One buffer, reused: memory stays flat whatever the size (as sha256File in hash.ts).
const buf = Buffer.allocUnsafe(READ_BYTES);
let fd: number | undefined;
let hashed = 0;

parentPort!.on('message', (m: { upTo: number; end?: boolean }) => {
  try {
    fd ??= openSync(path, 'r');
    while (hashed < m.upTo) {
      const n = readSync(fd, buf, 0, Math.min(READ_BYTES, m.upTo - hashed), hashed);
      if (n === 0) throw new Error(`${path} ends at ${hashed} bytes, before ${m.upTo}`);
      hash.update(buf.subarray(0, n));
      hashed += n;
    }
    if (!m.end) return parentPort!.postMessage({ hashed });
    closeSync(fd);
    parentPort!.postMessage({ sha256: hash.digest('hex') });
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
  }
});
