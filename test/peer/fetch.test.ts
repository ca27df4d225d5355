// fetchFile() against an in-process owner whose shared file changes on disk.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fetchFile } from '../../src/peer/fetch';
import { Peer } from '../../src/peer/peer';
import { ShareIndex } from '../../src/peer/share';
import { RegistryClient } from '../../src/registry/client';
import { tempDir } from '../support/cli';
import { registry, requesterIdentity, sha256 } from './support';

test('a file edited on the owner since it was indexed is fetched in its new version, first time', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry();
  const file = join(dir, 'share', 'notes.txt');
  await mkdir(join(dir, 'share'));
  await writeFile(file, 'first version\n');
  const owner = await Peer.start({ name: 'editor', registryUrl: reg.url, share: await ShareIndex.build([file]), port: 0 });
  try {
    await writeFile(file, 'second version, edited after the peer started\n');
    const res = await fetchFile({ registry: new RegistryClient(reg.url), identity: await requesterIdentity(dir), peer: 'editor', file: 'notes.txt', via: 'tcp', downloads: join(dir, 'dl') });
    assert.equal(res.sha256, await sha256(file));
    assert.equal(await sha256(res.path), await sha256(file));
  } finally {
    await owner.stop();
    await reg.close();
    await cleanup();
  }
});
