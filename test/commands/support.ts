// Set-up shared by the CLI tests of identities, pinning and --allow.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { tempDir } from '../support/cli';
import { registry, sha256 } from '../peer/support';

/** The one line an error printed on stderr (asserting there is exactly one), without its newline. */
export function oneLine(stderr: string): string {
  assert.equal(stderr.split('\n').length, 2, `one line and its newline: ${JSON.stringify(stderr)}`);
  return stderr.trimEnd();
}

export interface Fixture {
  /** A temporary folder, removed after the file's tests. */
  dir: string;
  /** `dir/share`, holding the one file `fileName`. */
  share: string;
  /** The SHA-256 of that file. */
  digest: string;
  reg: Awaited<ReturnType<typeof registry>>;
}

/** For a whole test file: a registry and a temporary folder sharing one file (set up before, removed after). */
export function registryWithFile(prefix: string, fileName: string, content: string): Fixture {
  const f = {} as Fixture;
  let cleanup: (() => Promise<void>) | undefined;
  before(async () => {
    ({ dir: f.dir, cleanup } = await tempDir(prefix));
    f.reg = await registry();
    f.share = join(f.dir, 'share');
    await mkdir(f.share);
    await writeFile(join(f.share, fileName), content);
    f.digest = await sha256(join(f.share, fileName));
  });
  after(async () => {
    await f.reg?.close();
    await cleanup?.();
  });
  return f;
}
