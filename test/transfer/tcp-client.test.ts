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

/**
 * An owner peer process (its own disk is fine) sharing `size` random bytes, a session with it,
 * and a TCP ticket for the file under `sessionId`: ready for fetchOverTcp into the empty `part`.
 */
async function ticketed(t: { after(fn: () => Promise<void>): void }, name: string, size: number, sessionId: number) {
  const closers: Array<() => Promise<unknown>> = [];
  // Undone last made first: the session, the owner, the registry, then the folder.
  t.after(async () => {
    for (const close of closers.reverse()) await close();
  });
  const { dir, cleanup } = await tempDir();
  closers.push(cleanup);
  const reg = await registry();
  closers.push(() => reg.close());
  const digest = await randomFile(join(dir, 'share', 'file.bin'), size);
  const owner = await startPeer(name, reg.url, join(dir, 'share'));
  closers.push(() => owner.cli.stop());
  const { endpoint, conn } = await connectToPeer(reg.url, name);
  closers.push(() => endpoint.close());
  const answer = await new ControlClient(endpoint).get(conn, name, { transport: 'tcp', sessionId, offset: 0, expectedSha256: null, maxPayload: 0, name: 'file.bin' });
  assert.equal(answer.status, GetStatus.ok);
  const part = join(dir, 'file.part');
  await writeFile(part, '');
  return { conn, part, digest };
}

/** Timers alive in this process: a download must not leave one behind (it would keep `get` alive). */
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/** Every libuv thread busy for a while (PBKDF2 rounds): no file write can run meanwhile. */
const stallDisk = (rounds: number) => Array.from({ length: 4 }, () => new Promise((resolve) => pbkdf2('a', 'b', rounds, 64, 'sha512', resolve)));

test('a requester whose disk stalls longer than the idle timeout still completes: only the peer\'s silence counts as idle', async (t) => {
  const size = 32 * 1024 * 1024;
  const { conn, part, digest } = await ticketed(t, 'steady', size, 31);
  const before = timers();
  // Our disk "stalls" for about 3 s.
  const stall = stallDisk(3_000_000);
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
});

test('a download whose last write waits for the disk leaves no timer behind (the process can exit)', async (t) => {
  // Exactly the write stream's buffer: the last write is the one that finds it full.
  const size = 1024 * 1024;
  const { conn, part, digest } = await ticketed(t, 'quick', size, 32);
  const before = timers();
  // The whole file and the end of the stream arrive while no write can complete.
  const stall = stallDisk(1_500_000);
  const res = await fetchOverTcp({ conn, sessionId: 32, partPath: part, offset: 0, count: size });
  await Promise.all(stall);
  assert.equal(res.bytes, size);
  assert.equal(await sha256(part), digest);
  assert.ok(timers() <= before, `${timers() - before} timer(s) left running after the download`);
});
