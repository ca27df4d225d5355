// Real peers (CLI processes) and a real registry: byte-exact transfers, concurrency, refusals.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, tempDir, type RunningCli } from '../support/cli';
import { randomFile, registry, sha256, startPeer } from './support';

let reg: Awaited<ReturnType<typeof registry>>;
let owner: RunningCli;
let dir: string;
let cleanup: () => Promise<void>;
const digests = new Map<string, string>();

before(async () => {
  ({ dir, cleanup } = await tempDir());
  reg = await registry();
  const share = join(dir, 'share');
  digests.set('empty.txt', await randomFile(join(share, 'empty.txt'), 0));
  digests.set('one.bin', await randomFile(join(share, 'one.bin'), 1));
  digests.set('mib.bin', await randomFile(join(share, 'mib.bin'), 1024 * 1024));
  digests.set('ünï çödé €.txt', await randomFile(join(share, 'ünï çödé €.txt'), 4321));
  digests.set('big.bin', await randomFile(join(share, 'big.bin'), 256 * 1024 * 1024));
  await writeFile(join(dir, 'secret.txt'), 'not shared');
  owner = (await startPeer('owner', reg.url, share)).cli;
});

after(async () => {
  await owner?.stop();
  await reg?.close();
  await cleanup?.();
});

for (const name of ['empty.txt', 'one.bin', 'mib.bin', 'ünï çödé €.txt', 'big.bin']) {
  test(`get ${name} over TCP is byte-exact`, async () => {
    const downloads = join(dir, `dl-${name}`);
    const res = await runCli(['get', 'owner', name, '--registry', reg.url, '--downloads', downloads, '--json'], { timeoutMs: 120_000 });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.via, 'tcp');
    assert.equal(out.sha256, digests.get(name));
    assert.equal(out.path, join(downloads, name));
    assert.equal(await sha256(out.path), digests.get(name));
  });
}

test('a second get of the same file never overwrites: name (1).ext', async () => {
  const downloads = join(dir, 'dl-twice');
  for (const expected of ['mib.bin', 'mib (1).bin', 'mib (2).bin']) {
    const res = await runCli(['get', 'owner', 'mib.bin', '--registry', reg.url, '--downloads', downloads]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.trim(), join(downloads, expected));
    assert.equal(await sha256(join(downloads, expected)), digests.get('mib.bin'));
  }
});

test('20 simultaneous gets from one owner are all byte-exact', async () => {
  const runs = Array.from({ length: 20 }, (_, i) =>
    runCli(['get', 'owner', 'mib.bin', '--registry', reg.url, '--downloads', join(dir, `dl-many-${i}`), '--json'], { timeoutMs: 120_000 }),
  );
  const results = await Promise.all(runs);
  for (const r of results) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256(JSON.parse(r.stdout).path), digests.get('mib.bin'));
  }
});

test('traversal, absolute paths and unshared files are refused with exit 4', async () => {
  for (const name of ['../secret.txt', '/etc/passwd', join(dir, 'secret.txt'), 'nope.txt', 'a\\..\\secret.txt']) {
    const res = await runCli(['get', 'owner', name, '--registry', reg.url, '--downloads', join(dir, 'dl-refused')]);
    assert.equal(res.code, 4, `${name}: ${res.stderr}`);
    assert.match(res.stderr, /no such file/);
    assert.equal(res.stderr.trim().split('\n').length, 1);
  }
});

test('files and peers list what is there, with the --json shapes of the README command reference', async () => {
  const files = await runCli(['files', 'owner', '--registry', reg.url, '--json']);
  assert.equal(files.code, 0, files.stderr);
  const list = JSON.parse(files.stdout).files as { name: string; size: number; sha256: string; kind: string }[];
  assert.deepEqual(list.map((f) => f.name).sort(), [...digests.keys()].sort());
  for (const f of list) assert.equal(f.sha256, digests.get(f.name));
  assert.equal(list.find((f) => f.name === 'mib.bin')!.kind, 'other');
  assert.equal(list.find((f) => f.name === 'empty.txt')!.kind, 'text');
  const peers = await runCli(['peers', '--registry', reg.url, '--json']);
  assert.equal(peers.code, 0);
  assert.ok(JSON.parse(peers.stdout).peers.some((p: { name: string }) => p.name === 'owner'));
  const unknown = await runCli(['files', 'nobody', '--registry', reg.url]);
  assert.equal(unknown.code, 3);
});
