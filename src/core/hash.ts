// SHA-256 of a whole file, as the owner announces it and the requester checks it (PROTOCOL.md 7).
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

const READ_BYTES = 1024 * 1024;

/**
 * Lower-case hex; reads 1 MiB at a time into one buffer, reused (memory stays flat whatever the
 * size, and no fresh MiB per read: first-touch page faults cost about as much as hashing it).
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  const file = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    for (;;) {
      const { bytesRead } = await file.read(buf, 0, READ_BYTES, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
  }
  return hash.digest('hex');
}
