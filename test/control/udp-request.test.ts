// A GET_REQUEST is judged before it is answered: a max payload the UDP transport cannot cut
// chunks to is refused as bad_request (PROTOCOL.md 6.1), never answered ok and then aborted; so
// is a session ID used before or too far below the highest (PROTOCOL.md 4.3).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { GetStatus } from '../../src/wire/control';
import { ControlClient } from '../../src/control/client';
import { SESSION_ID_WINDOW } from '../../src/control/server';
import { Peer } from '../../src/peer/peer';
import { ShareIndex } from '../../src/peer/share';
import { tempDir } from '../support/cli';
import { connectToPeer, randomFile, registry } from '../peer/support';

/** An owner peer sharing a.bin (4 KiB), and a requester's secure connection to it, for `body`. */
async function withOwner(body: (client: ControlClient, conn: Awaited<ReturnType<typeof connectToPeer>>['conn']) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempDir();
  const reg = await registry();
  await randomFile(join(dir, 'a.bin'), 4096);
  const owner = await Peer.start({ name: 'o', registryUrl: reg.url, share: await ShareIndex.build([join(dir, 'a.bin')]), port: 0 });
  const { endpoint: ep, conn } = await connectToPeer(reg.url, 'o');
  try {
    await body(new ControlClient(ep), conn);
  } finally {
    await ep.close();
    await owner.stop();
    await reg.close();
    await cleanup();
  }
}

test('UDP GET with max payload 63 is refused as bad_request; 64 and 1200 are accepted', () =>
  withOwner(async (client, conn) => {
    const ask = (maxPayload: number, sessionId: number) =>
      client.get(conn, 'o', { transport: 'udp', sessionId, offset: 0, expectedSha256: null, maxPayload, name: 'a.bin' });
    assert.equal((await ask(0, 1)).status, GetStatus.badRequest);
    assert.equal((await ask(63, 2)).status, GetStatus.badRequest);
    assert.equal((await ask(64, 3)).status, GetStatus.ok);
    assert.equal((await ask(1200, 4)).status, GetStatus.ok);
  }));

test('session IDs: each used once; out of order within the window is fine, far below the highest is refused', () =>
  withOwner(async (client, conn) => {
    // TCP: a ticket each, no transfer runs; the owner's per-requester slots are 4.
    const ask = (sessionId: number) => client.get(conn, 'o', { transport: 'tcp', sessionId, offset: 0, expectedSha256: null, maxPayload: 0, name: 'a.bin' });
    assert.equal((await ask(10)).status, GetStatus.ok);
    assert.equal((await ask(8)).status, GetStatus.ok); // a GET sent at the same time overtaken by a later one
    assert.equal((await ask(8)).status, GetStatus.ok); // a retry of a remembered GET: the same answer
    await new Promise((r) => setTimeout(r, 5_500)); // tickets expire, slots free; answers stay remembered
    assert.equal((await ask(SESSION_ID_WINDOW + 20)).status, GetStatus.ok);
    assert.equal((await ask(9)).status, GetStatus.badRequest); // never used, but too far below
  }));
