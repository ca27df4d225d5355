// Ctrl+C during `get`: the transfer ends cleanly with one line and exit 1, the .part left behind is
// a true prefix of the file (for UDP: cut to its hole-free prefix), and the next `get` resumes it.
// A second owner of the same files sits behind a slow relay/proxy (its registration points
// there), so the interrupt lands mid-transfer; the resume asks the direct one.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, startCli, tempDir } from '../support/cli';
import { UdpRelay } from '../support/relay';
import { relayAndProxy } from '../support/relay-and-proxy';
import type { TcpProxy } from '../support/tcp-proxy';
import { readRecord, recordPath } from '../../src/transfer/resume-record';
import { pointRegistration, randomFile, registry, sha256, startPeer } from './support';

const SIZE = 8 * 1024 * 1024 + 5;
let reg: Awaited<ReturnType<typeof registry>>;
let owner: Awaited<ReturnType<typeof startPeer>>;
let slowOwner: Awaited<ReturnType<typeof startPeer>>;
let dir: string;
let original: Buffer;
let digest: string;
let relay: UdpRelay;
let proxy: TcpProxy;
let cleanup: () => Promise<void>;

before(async () => {
  ({ dir, cleanup } = await tempDir('p2pshare-interrupt-'));
  reg = await registry({ ttl: 300 });
  digest = await randomFile(join(dir, 'share', 'big.bin'), SIZE);
  original = await readFile(join(dir, 'share', 'big.bin'));
  owner = await startPeer('owner', reg.url, join(dir, 'share'));
  slowOwner = await startPeer('slow-owner', reg.url, join(dir, 'share'));
  // 16 Mbit/s: the 8 MiB file takes about 4 s, so an interrupt after the first MiB is mid-way.
  const target = { address: '127.0.0.1', port: slowOwner.port };
  ({ relay, proxy } = await relayAndProxy({ target, toClient: { rateMbit: 16 } }, { target, rateMbit: 16 }));
  await pointRegistration(reg.url, 'slow-owner', relay.port);
});

after(async () => {
  await proxy?.close();
  await relay?.close();
  await slowOwner?.cli.stop();
  await owner?.cli.stop();
  await reg?.close();
  await cleanup?.();
});

async function partOf(downloads: string): Promise<string | undefined> {
  const names = await readdir(downloads).catch(() => [] as string[]);
  const part = names.find((n) => n.endsWith('.part'));
  return part && join(downloads, part);
}

async function waitForPartBytes(downloads: string, bytes: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const part = await partOf(downloads);
    if (part && (await stat(part)).size >= bytes) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no .part of ${bytes} bytes in ${downloads} within 20 s`);
}

for (const via of ['udp', 'tcp'] as const) {
  test(`Ctrl+C during a ${via.toUpperCase()} get: one line, exit 1, a true prefix kept, then resumed byte-exact`, async () => {
    const downloads = join(dir, `dl-${via}`);
    const get = startCli(['get', 'slow-owner', 'big.bin', '--via', via, '--registry', reg.url, '--downloads', downloads]);
    await waitForPartBytes(downloads, 1024 * 1024);
    const code = await get.stop('SIGINT');
    assert.equal(code, 1);
    assert.match(get.stderr, /interrupted: big\.bin not finished; the partial file is kept, run again to resume/);
    assert.equal(get.stderr.trim().split('\n').length, 1, get.stderr);

    const names = await readdir(downloads);
    assert.deepEqual(names.filter((n) => !n.endsWith('.part')), [], 'no lock and no final file left behind');
    const part = (await partOf(downloads))!;
    const kept = await readFile(part);
    assert.ok(kept.length >= 1024 * 1024 && kept.length < SIZE, `kept ${kept.length} bytes`);
    const prefix = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(prefix(kept), prefix(original.subarray(0, kept.length)), 'the .part is exactly the start of the file');

    const res = await runCli(['get', 'owner', 'big.bin', '--via', via, '--registry', reg.url, '--downloads', downloads, '--json'], { timeoutMs: 60_000 });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { path: string; resumedFrom: number; bytesTransferred: number };
    assert.equal(out.resumedFrom, kept.length);
    assert.equal(out.bytesTransferred, SIZE - kept.length);
    assert.equal(await sha256(out.path), digest);
  });
}

test('an owner stopped mid-UDP-transfer tells the requester (ABORT): it fails at once, not after its 15 s idle timeout', async () => {
  const second = await startPeer('slow-owner2', reg.url, join(dir, 'share'));
  // A queue big enough that the ABORT is not dropped behind the data (a full drop-tail queue
  // would leave the requester to its idle timeout, which is the protocol's fallback).
  const slow = await UdpRelay.start({ target: { address: '127.0.0.1', port: second.port }, toClient: { rateMbit: 16, queueBytes: 64 << 20 } });
  try {
    await pointRegistration(reg.url, 'slow-owner2', slow.port);
    const downloads = join(dir, 'dl-owner-stops');
    const get = startCli(['get', 'slow-owner2', 'big.bin', '--via', 'udp', '--registry', reg.url, '--downloads', downloads]);
    await waitForPartBytes(downloads, 512 * 1024);
    assert.equal(await second.cli.stop('SIGTERM'), 0);
    const stopped = Date.now();
    const { code } = await get.exited;
    assert.equal(code, 1);
    assert.match(get.stderr, /sender aborted the transfer \(cancelled\)/);
    assert.ok(Date.now() - stopped < 10_000, 'ended by the ABORT, not by the idle timeout');
  } finally {
    await slow.close();
    await second.cli.stop();
  }
});

test('a UDP get killed outright (SIGKILL) through a lossy link: the next get still ends byte-exact', async () => {
  const lossyOwner = await startPeer('lossy-owner', reg.url, join(dir, 'share'));
  const lossy = await UdpRelay.start({ target: { address: '127.0.0.1', port: lossyOwner.port }, toClient: { rateMbit: 16, lossPercent: 5, seed: 11 } });
  try {
    await pointRegistration(reg.url, 'lossy-owner', lossy.port);
    const downloads = join(dir, 'dl-killed');
    const get = startCli(['get', 'lossy-owner', 'big.bin', '--via', 'udp', '--registry', reg.url, '--downloads', downloads]);
    await waitForPartBytes(downloads, 2 * 1024 * 1024);
    await get.stop('SIGKILL');
    assert.ok(lossy.counters.toClient.lost > 0, 'the link really lost datagrams');
    // Lost datagrams left holes below the .part's end; the record vouches only for the prefix
    // before the first one, and every byte of it is the owner's.
    const part = (await partOf(downloads))!;
    const rec = await readRecord(recordPath(part));
    assert.ok(rec, 'the resume record survives the kill');
    const killedAt = (await stat(part)).size;
    assert.ok(rec.written <= killedAt);
    const prefix = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(prefix((await readFile(part)).subarray(0, rec.written)), prefix(original.subarray(0, rec.written)));
    const res = await runCli(['get', 'owner', 'big.bin', '--via', 'udp', '--registry', reg.url, '--downloads', downloads, '--json'], { timeoutMs: 60_000 });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { path: string; resumedFrom: number };
    // From the recorded prefix, or past it by writes it lists that are found in the file.
    assert.ok(out.resumedFrom >= rec.written && out.resumedFrom <= killedAt, `resumed from ${out.resumedFrom}, recorded ${rec.written}`);
    assert.equal(await sha256(out.path), digest);
    assert.deepEqual((await readdir(downloads)).sort(), ['big.bin']);
  } finally {
    await lossy.close();
    await lossyOwner.cli.stop();
  }
});
