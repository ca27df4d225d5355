// The requester's TCP transfer when its own disk falls behind: the owner is not to blame.
import assert from 'node:assert/strict';
import { pbkdf2 } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { GetStatus } from '../../src/wire/control';
import { ControlClient } from '../../src/control/client';
import { fetchOverTcp } from '../../src/transfer/tcp-client';
import { tempDir } from '../support/cli';
import { connectToPeer, randomFile, registry, sha256, startPeer } from '../peer/support';

test('a requester whose disk stalls longer than the idle timeout still completes: only the peer\'s silence counts as idle', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry();
  const size = 32 * 1024 * 1024;
  const digest = await randomFile(join(dir, 'share', 'big.bin'), size);
  const owner = await startPeer('steady', reg.url, join(dir, 'share')); // its own process: its disk is fine
  const { endpoint: ep, conn } = await connectToPeer(reg.url, 'steady');
  try {
    const answer = await new ControlClient(ep).get(conn, 'steady', { transport: 'tcp', sessionId: 31, offset: 0, expectedSha256: null, maxPayload: 0, name: 'big.bin' });
    assert.equal(answer.status, GetStatus.ok);
    const part = join(dir, 'big.part');
    await writeFile(part, '');
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    // Our disk "stalls" for about 3 s: every libuv thread is busy, so no file write can run.
    const stall = Array.from({ length: 4 }, () => new Promise((resolve) => pbkdf2('a', 'b', 3_000_000, 64, 'sha512', resolve)));
    // No file write can complete before the first of the four threads is free again.
    let threadFreed = false;
    void Promise.race(stall).then(() => (threadFreed = true));
    const res = await fetchOverTcp({ conn, sessionId: 31, partPath: part, offset: 0, count: size, idleTimeoutMs: 1000 });
    assert.ok(threadFreed, 'the stall did not happen: the transfer ended while every thread was busy');
    await Promise.all(stall);
    assert.equal(res.bytes, size);
    assert.equal(await sha256(part), digest);
    // Several records arrive in one read while the disk is behind: one disk timer, not one per
    // record left running for 60 s (which kept a finished `get` alive for a minute).
    assert.ok(timers() <= before, `${timers() - before} timer(s) left running after the download`);
  } finally {
    await ep.close();
    await owner.cli.stop();
    await reg.close();
    await cleanup();
  }
});

test('a download whose last write waits for the disk leaves no timer behind (the process can exit)', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry();
  // Exactly the write stream's buffer: the last write is the one that finds it full.
  const size = 1024 * 1024;
  const digest = await randomFile(join(dir, 'share', 'one.bin'), size);
  const owner = await startPeer('quick', reg.url, join(dir, 'share'));
  const { endpoint: ep, conn } = await connectToPeer(reg.url, 'quick');
  try {
    const answer = await new ControlClient(ep).get(conn, 'quick', { transport: 'tcp', sessionId: 32, offset: 0, expectedSha256: null, maxPayload: 0, name: 'one.bin' });
    assert.equal(answer.status, GetStatus.ok);
    const part = join(dir, 'one.part');
    await writeFile(part, '');
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    // The whole file and the end of the stream arrive while no write can complete.
    const stall = Array.from({ length: 4 }, () => new Promise((resolve) => pbkdf2('a', 'b', 1_500_000, 64, 'sha512', resolve)));
    const res = await fetchOverTcp({ conn, sessionId: 32, partPath: part, offset: 0, count: size });
    await Promise.all(stall);
    assert.equal(res.bytes, size);
    assert.equal(await sha256(part), digest);
    assert.ok(timers() <= before, `${timers() - before} timer(s) left running after the download`);
  } finally {
    await ep.close();
    await owner.cli.stop();
    await reg.close();
    await cleanup();
  }
});
