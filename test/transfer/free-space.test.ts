// The free-space check before a download, on a real small file system (a tmpfs of 6 MiB this
// test mounts and removes; see support/tmpfs.ts).
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { P2pError } from '../../src/core/errors';
import { ensureRoom } from '../../src/transfer/download';
import { runCli, tempDir } from '../support/cli';
import { mountTmpfs, unmount } from '../support/tmpfs';
import { owner } from '../control/support';
import { randomFile, registry, sha256 } from '../peer/support';

const MiB = 1024 * 1024;

test('a download that does not fit the downloads folder is refused before it starts, in one line; one that fits goes ahead', async (t) => {
  const { dir, cleanup } = await tempDir();
  const small = join(dir, 'small-fs');
  await mkdir(small);
  if (!mountTmpfs(small, 6, t)) return cleanup();
  const reg = await registry();
  const big = join(dir, 'share', 'big.bin');
  const fits = join(dir, 'share', 'fits.bin');
  await randomFile(big, 8 * MiB);
  const digest = await randomFile(fits, 2 * MiB);
  const o = await owner([big, fits], { name: 'roomy' });
  await o.register(reg.url);
  try {
    const downloads = join(small, 'dl');
    for (const via of ['tcp', 'udp']) {
      const res = await runCli(['get', 'roomy', 'big.bin', '--registry', reg.url, '--downloads', downloads, '--via', via]);
      assert.equal(res.code, 1, res.stderr);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      assert.match(res.stderr, /^error: not enough space in .*small-fs\/dl for big\.bin: it needs 8\.0 MiB, and [\d.]+ MiB are free\n$/);
      assert.deepEqual(await readdir(small), [], `nothing created on the small file system (${via})`);
    }
    const ok = await runCli(['get', 'roomy', 'fits.bin', '--registry', reg.url, '--downloads', downloads, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await sha256(JSON.parse(ok.stdout).path), digest);

    // A .part already there counts: only what it lacks must fit.
    const part = (name: string) => join(downloads, `${name}.${'ab'.repeat(6)}.part`);
    await writeFile(part('resumed.bin'), Buffer.alloc(2 * MiB)); // 2 MiB of the 2.5 MiB there
    await ensureRoom(downloads, 'resumed.bin', 2.5 * MiB, 'ab'.repeat(32)); // 0.5 MiB + margin fits
    await assert.rejects(ensureRoom(downloads, 'other.bin', 2.5 * MiB, 'ab'.repeat(32)), (err) => err instanceof P2pError && /needs 2\.5 MiB/.test(err.message));
    await assert.rejects(ensureRoom(downloads, 'resumed.bin', 4 * MiB, 'ab'.repeat(32)), (err) => err instanceof P2pError && /needs 2\.0 MiB more \(2\.0 MiB of 4\.0 MiB are there\)/.test(err.message));
  } finally {
    await o.close();
    await reg.close();
    unmount(small);
    await cleanup();
  }
});
