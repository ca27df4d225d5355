// The first half of an atomic replacement of a private file (identity, known_peers): the new
// content, complete and on disk, under a temp name in the same folder, for link() or rename().
import { randomBytes } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes `text` to a new file beside `path` (folder created 0700, file 0600, fsynced); returns its name. */
export async function writePrivateTemp(path: string, text: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const file = await open(temp, 'wx', 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  return temp;
}
