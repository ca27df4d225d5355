// Flow control: a requester whose disk falls far behind (its libuv threadpool, which does the
// file writes, is kept busy) advertises a shrinking window; the owner, in its own process and
// unaffected, slows down to it; the file is still byte-exact and memory stayed bounded.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { pbkdf2 } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { UdpTransfers } from '../../src/transfer/udp/index';
import { tempDir } from '../support/cli';
import { PROBE, requesterEndpoint } from '../support/secure';
import { randomFile, sessionId, sha256 } from './support';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir('p2pshare-udp-flow-')));
after(async () => cleanup());

test('a slow disk closes the window; the owner follows it and the file is byte-exact', async (t) => {
  const size = 24 * 1024 * 1024;
  const src = join(dir, 'src');
  const digest = await randomFile(src, size);
  const child = fork(join(__dirname, 'owner-process.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const requester = await requesterEndpoint();
  let clogging = true;
  try {
    const { port, key } = await new Promise<{ port: number; key: string }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { port: number; key: string }));
      child.once('error', reject);
      setTimeout(() => reject(new Error('owner process did not start')), 20_000).unref();
    });
    const conn = await requester.handshake({ address: '127.0.0.1', port }, { peerKey: Buffer.from(key, 'base64url'), ownerName: 'owner' });
    const connected = new Promise((resolve) => child.once('message', resolve));
    conn.send(PROBE, 0); // the owner's end of the connection: validated by this first frame
    await connected;
    const udp = new UdpTransfers(requester, { idleTimeoutMs: 10_000 });
    // Keep every threadpool thread busy with key derivations: each file write waits its turn.
    const clog = (): void => {
      if (clogging) pbkdf2('x', 'y', 1_000_000, 32, 'sha256', () => clog());
    };
    for (let i = 0; i < 8; i++) clog();
    const id = sessionId();
    const part = join(dir, 'slow.part');
    const received = udp.receive({ conn, sessionId: id, partPath: part, offset: 0, size });
    const sent = new Promise<{ ok?: unknown; error?: string }>((resolve) => child.once('message', (m) => resolve(m as { ok?: unknown; error?: string })));
    child.send({ sessionId: id, path: src, size });
    const r = await received;
    clogging = false;
    const s = await sent;
    assert.equal(s.error, undefined);
    assert.equal(await sha256(part), digest);
    t.diagnostic(`smallest window ${r.minWindow} chunks, ${r.overflowDrops} dropped for a full write queue, ${r.seconds.toFixed(2)} s`);
    assert.ok(r.minWindow < 1024, `the window never closed (smallest ${r.minWindow}): the disk did not fall behind`);
    // The owner respected the window: data dropped for a full write queue stays a small share.
    assert.ok(r.overflowDrops < (size / 1200) * 0.05, `${r.overflowDrops} DATA dropped for a full write queue`);
  } finally {
    clogging = false;
    child.disconnect();
    await requester.close();
  }
});
