// A UDP GET_REQUEST is judged before it is answered: a max payload the transport cannot cut
// chunks to is refused as bad_request (PROTOCOL.md 6.1), never answered ok and then aborted.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { GetStatus } from '../../src/wire/control';
import { ControlClient } from '../../src/control/client';
import { Peer } from '../../src/peer/peer';
import { ShareIndex } from '../../src/peer/share';
import { tempDir } from '../support/cli';
import { connectToPeer, randomFile, registry } from '../peer/support';

test('UDP GET with max payload 63 is refused as bad_request; 64 and 1200 are accepted', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry();
  await randomFile(join(dir, 'a.bin'), 4096);
  const owner = await Peer.start({ name: 'o', registryUrl: reg.url, share: await ShareIndex.build([join(dir, 'a.bin')]), port: 0 });
  const { endpoint: ep, conn } = await connectToPeer(reg.url, 'o');
  try {
    const ask = (maxPayload: number, sessionId: number) =>
      new ControlClient(ep).get(conn, 'o', { transport: 'udp', sessionId, offset: 0, expectedSha256: null, maxPayload, name: 'a.bin' });
    assert.equal((await ask(0, 1)).status, GetStatus.badRequest);
    assert.equal((await ask(63, 2)).status, GetStatus.badRequest);
    assert.equal((await ask(64, 3)).status, GetStatus.ok);
    assert.equal((await ask(1200, 4)).status, GetStatus.ok);
  } finally {
    await ep.close();
    await owner.stop();
    await reg.close();
    await cleanup();
  }
});
