// SHA-256 of a whole file, as the owner announces it and the requester checks it (PROTOCOL.md 7).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** Lower-case hex; reads 1 MiB at a time (memory stays flat whatever the size). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
