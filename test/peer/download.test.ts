// The requester's downloads folder after fetches that fail: what is left behind, and what not.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliError, ExitCode } from '../../src/cli/errors';
import { fetchFile } from '../../src/peer/fetch';
import { Peer } from '../../src/peer/peer';
import { ShareIndex } from '../../src/peer/share';
import { RegistryClient } from '../../src/registry/client';
import { tempDir } from '../support/cli';
import { randomFile, registry } from './support';

test('a fetch refused before any byte arrived (owner busy) leaves nothing in the downloads folder', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry();
  await randomFile(join(dir, 'share', 'a.txt'), 1000);
  const owner = await Peer.start({ name: 'full', registryUrl: reg.url, share: await ShareIndex.build([join(dir, 'share', 'a.txt')]), port: 0, maxTransfers: 0 });
  const downloads = join(dir, 'dl');
  try {
    await assert.rejects(
      fetchFile({ registry: new RegistryClient(reg.url), peer: 'full', file: 'a.txt', via: 'tcp', downloads }),
      (err: unknown) => err instanceof CliError && err.exitCode === ExitCode.failed && /busy/.test(err.message),
    );
    assert.deepEqual(await readdir(downloads), [], 'an empty .part (or its lock) was left behind');
  } finally {
    await owner.stop();
    await reg.close();
    await cleanup();
  }
});
