// The UDP transport end to end through the real CLI: a peer process owns the files, `get`
// fetches them with --via udp and --via auto (images), resumes a .part, and works through the
// impairment relay (the owner's registration pointed at the relay, as a NAT's mapping would be).
import assert from 'node:assert/strict';
import { mkdir, open, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, tempDir, type RunningCli } from '../support/cli';
import { MAX_PAYLOAD_BYTES } from '../../src/wire/transfer';
import { peerBehindRelay, randomFile, registry, sha256, startPeer } from '../peer/support';

let reg: Awaited<ReturnType<typeof registry>>;
let owner: RunningCli;
let dir: string;
let share: string;
let cleanup: () => Promise<void>;
const digests = new Map<string, string>();
const MiB = 1024 * 1024;

before(async () => {
  ({ dir, cleanup } = await tempDir('p2pshare-udp-cli-'));
  reg = await registry({ ttl: 300 });
  share = join(dir, 'share');
  digests.set('big.bin', await randomFile(join(share, 'big.bin'), 48 * MiB + 7));
  digests.set('photo.jpg', await randomFile(join(share, 'photo.jpg'), 300_001));
  digests.set('empty.bin', await randomFile(join(share, 'empty.bin'), 0));
  digests.set('resume.bin', await randomFile(join(share, 'resume.bin'), 5 * MiB + 1));
  digests.set('lossy.bin', await randomFile(join(share, 'lossy.bin'), 4 * MiB));
  ({ cli: owner } = await startPeer('owner', reg.url, share));
});

after(async () => {
  await owner?.stop();
  await reg?.close();
  await cleanup?.();
});

async function get(peer: string, name: string, downloads: string, via?: string) {
  const res = await runCli(['get', peer, name, '--registry', reg.url, '--downloads', downloads, '--json', ...(via ? ['--via', via] : [])], { timeoutMs: 120_000 });
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout) as { via: string; path: string; sha256: string; resumedFrom: number; bytesTransferred: number };
}

for (const name of ['big.bin', 'empty.bin']) {
  test(`get ${name} --via udp is byte-exact`, async () => {
    const out = await get('owner', name, join(dir, `dl-${name}`), 'udp');
    assert.equal(out.via, 'udp');
    assert.equal(out.sha256, digests.get(name));
    assert.equal(await sha256(out.path), digests.get(name));
  });
}

test('get of an image with --via auto travels over UDP, byte-exact', async () => {
  const out = await get('owner', 'photo.jpg', join(dir, 'dl-auto'));
  assert.equal(out.via, 'udp');
  assert.equal(await sha256(out.path), digests.get('photo.jpg'));
});

test('an existing .part is resumed over UDP: only the rest crosses the wire', async () => {
  const downloads = join(dir, 'dl-resume');
  const digest = digests.get('resume.bin')!;
  const offset = 2 * MiB + 123;
  const prefix = Buffer.alloc(offset);
  const fh = await open(join(share, 'resume.bin'), 'r');
  await fh.read(prefix, 0, offset, 0);
  await fh.close();
  await mkdir(downloads, { recursive: true });
  await writeFile(join(downloads, `resume.bin.${digest.slice(0, 12)}.part`), prefix);
  const out = await get('owner', 'resume.bin', downloads, 'udp');
  assert.equal(out.resumedFrom, offset);
  assert.equal(out.bytesTransferred, 5 * MiB + 1 - offset);
  assert.equal(await sha256(out.path), digest);
  assert.equal((await stat(out.path)).size, 5 * MiB + 1);
});

test('through the relay (3 % loss, 5 ms delay each way): byte-exact, and the relay saw the loss', async () => {
  // A second owner whose registration then points at the relay: re-registered with its own key
  // (every CLI of this file shares one identity), as if a NAT in front of it mapped that port.
  const relayed = await peerBehindRelay('relayed', reg.url, share, {
    toClient: { lossPercent: 3, delayMs: 5, seed: 5 },
    toTarget: { lossPercent: 3, delayMs: 5, seed: 6 },
  });
  const relay = relayed.relay;
  try {
    const out = await get('relayed', 'lossy.bin', join(dir, 'dl-relay'), 'udp');
    assert.equal(await sha256(out.path), digests.get('lossy.bin'));
    assert.ok(relay.counters.toClient.lost >= 30, `only ${relay.counters.toClient.lost} lost`);
    // Every chunk crossed the relay: at most 1423 bytes each (path MTU discovery confirms the
    // relay's 1500-byte MTU, PROTOCOL.md 6.1), so at least this many datagrams.
    assert.ok(relay.counters.toClient.forwarded > (4 * MiB) / MAX_PAYLOAD_BYTES);
  } finally {
    await relayed.stop();
  }
});

test('the requester reports a refused UDP get (not found) without waiting for a timeout', async () => {
  const started = Date.now();
  const res = await runCli(['get', 'owner', 'nope.bin', '--via', 'udp', '--registry', reg.url, '--downloads', join(dir, 'dl-nope')]);
  assert.equal(res.code, 4, res.stderr);
  assert.ok(Date.now() - started < 10_000);
});
