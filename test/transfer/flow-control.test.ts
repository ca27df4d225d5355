// Flow control: a requester whose disk falls far behind (its libuv threadpool, which does the
// file writes, is kept busy) advertises a shrinking window; the owner, in its own process and
// unaffected, slows down to it; the file is still byte-exact and memory stayed bounded.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { pbkdf2 } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Endpoint } from '../../src/net/endpoint';
import { UdpTransfers } from '../../src/transfer/udp/index';
import { tempDir } from '../support/cli';
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
  const requester = await Endpoint.bind(0, '127.0.0.1');
  let clogging = true;
  try {
    const { port } = await new Promise<{ port: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { port: number }));
      child.once('error', reject);
      setTimeout(() => reject(new Error('owner process did not start')), 20_000).unref();
    });
    const udp = new UdpTransfers(requester, { idleTimeoutMs: 10_000 });
    // Keep every threadpool thread busy with key derivations: each file write waits its turn.
    const clog = (): void => {
      if (clogging) pbkdf2('x', 'y', 200_000, 32, 'sha256', () => clog());
    };
    for (let i = 0; i < 8; i++) clog();
    const id = sessionId();
    const part = join(dir, 'slow.part');
    const received = udp.receive({ conn: requester.connect({ address: '127.0.0.1', port }), sessionId: id, partPath: part, offset: 0, size });
    const sent = new Promise<{ ok?: unknown; error?: string }>((resolve) => child.once('message', (m) => resolve(m as { ok?: unknown; error?: string })));
    child.send({ to: { address: '127.0.0.1', port: requester.port }, sessionId: id, path: src, size });
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
