// `get PEER NAME...` of folders, globs and many files as one job, end to end through the CLI:
// a tree of 1,000 files arrives identical, a rerun fetches nothing, an interrupted set resumes
// with only the rest travelling, and files already there are not fetched again.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, runProcess, startCli, tempDir } from '../support/cli';
import { registry, startPeer } from './support';

interface SetDoc {
  route: string;
  files: { name: string; size: number; status: string; path?: string; bytesTransferred?: number; error?: { message: string } }[];
  fetched: number;
  present: number;
  failed: number;
  bytesTransferred: number;
}

const SEGMENTS = ['ñandú', '日本語', 'émoji 🐱', 'plain', 'ß-straße'];
let dir: string;
let cleanup: () => Promise<void>;
let reg: Awaited<ReturnType<typeof registry>>;
let owner: Awaited<ReturnType<typeof startPeer>>;
let total = 0;

/** 1,000 files, 0 B to 8 MiB, up to 4 folders deep, some of them images (UDP under auto when larger than a batch takes). */
async function makeTree(root: string): Promise<number> {
  let bytes = 0;
  const big = [8 * 1024 * 1024, 3 * 1024 * 1024, 1024 * 1024 + 17, 0];
  for (let i = 0; i < 1000; i++) {
    const depth = i % 5; // 0..4 folders below the shared one
    const folders = Array.from({ length: depth }, (_, d) => SEGMENTS[(i + d) % SEGMENTS.length]!);
    const folder = join(root, ...folders);
    await mkdir(folder, { recursive: true });
    const size = i < big.length ? big[i]! : (i * 7919) % 20_000;
    const name = `${i % 3 === 0 ? 'fichier' : 'file'}-${i}${i % 10 === 0 ? '.png' : i % 10 === 1 ? '.jpg' : '.bin'}`;
    await writeFile(join(folder, name), randomBytes(size));
    bytes += size;
  }
  return bytes;
}

function parseDoc(stdout: string): SetDoc {
  return JSON.parse(stdout) as SetDoc;
}

/** The exit code, failing with the failed files' messages when it is not `want`. */
function assertExit(res: { code: number | null; stdout: string; stderr: string }, want: number): void {
  if (res.code === want) return;
  const failed = res.stdout.startsWith('{') ? parseDoc(res.stdout).files.filter((f) => f.status === 'failed') : [];
  assert.fail(`exit ${res.code}, not ${want}: ${res.stderr}\n${failed.slice(0, 5).map((f) => `${f.name}: ${f.error?.message}`).join('\n')}`);
}

async function count(root: string): Promise<{ files: number; leftovers: string[] }> {
  const all = (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  const leftovers = all.filter((e) => /\.(part|lock|unordered|takeover)$/.test(e.name)).map((e) => e.name);
  return { files: all.length - leftovers.length, leftovers };
}

before(async () => {
  ({ dir, cleanup } = await tempDir());
  total = await makeTree(join(dir, 'share', 'tree'));
  await writeFile(join(dir, 'share', 'alone.txt'), 'one file on its own\n');
  await writeFile(join(dir, 'share', 'lit*eral.txt'), 'a glob character in a name\n');
  reg = await registry();
  owner = await startPeer('folders', reg.url, join(dir, 'share'), ['--share', 'tree', '--share', 'alone.txt', '--share', 'lit*eral.txt']);
});

after(async () => {
  await owner?.cli.stop();
  await reg?.close();
  await cleanup?.();
});

test('a tree of 1,000 files (0 B to 8 MiB, 4 deep, non-ASCII names) arrives identical with one command; a rerun fetches nothing', async () => {
  const dl = join(dir, 'dl-whole');
  const res = await runCli(['get', 'folders', 'tree/', '--registry', reg.url, '--downloads', dl, '--json'], { timeoutMs: 300_000 });
  assertExit(res, 0);
  assert.equal(res.stderr, ''); // no warning either (16 files under way listen on one signal)
  const doc = parseDoc(res.stdout);
  assert.equal(doc.files.length, 1000);
  assert.equal(doc.fetched, 1000);
  assert.equal(doc.bytesTransferred, total);
  assert.equal(doc.route, 'direct');
  const diff = await runProcess('diff', ['-r', join(dir, 'share', 'tree'), join(dl, 'tree')]);
  assert.equal(diff.code, 0, diff.stdout + diff.stderr);
  assert.deepEqual((await count(dl)).leftovers, []);

  const again = await runCli(['get', 'folders', 'tree', '--registry', reg.url, '--downloads', dl, '--json'], { timeoutMs: 300_000 });
  assertExit(again, 0);
  const redo = parseDoc(again.stdout);
  assert.equal(redo.present, 1000);
  assert.equal(redo.fetched, 0);
  assert.equal(redo.bytesTransferred, 0);
  assert.equal((await count(dl)).files, 1000); // nothing saved twice as 'name (1)'
});

test('an interrupted set, run again, fetches only what is missing', async () => {
  const dl = join(dir, 'dl-interrupted');
  const args = ['get', 'folders', 'tree/', '--registry', reg.url, '--downloads', dl, '--json'];
  const first = startCli(args);
  // Interrupted once some files are in place, and before all of them are.
  for (let i = 0; i < 600; i++) {
    if ((await count(dl).catch(() => ({ files: 0 }))).files >= 150) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  first.proc.kill('SIGINT');
  const { code } = await first.exited;
  assert.equal(code, 1, first.stderr);
  assert.match(first.stderr, /^error: interrupted: \d+ of 1000 files in place; run the same command again to fetch the rest\n$/);
  const done = (await count(dl)).files;
  assert.ok(done >= 100 && done < 1000, `${done} files were in place when interrupted`);

  const rerun = await runCli(args, { timeoutMs: 300_000 });
  assertExit(rerun, 0);
  const doc = parseDoc(rerun.stdout);
  assert.equal(doc.present + doc.fetched, 1000);
  assert.ok(doc.present >= 100, `only ${doc.present} files were found complete`);
  const presentBytes = doc.files.filter((f) => f.status === 'present').reduce((n, f) => n + f.size, 0);
  assert.ok(doc.bytesTransferred <= total - presentBytes, `${doc.bytesTransferred} bytes travelled, the rest was ${total - presentBytes}`);
  const diff = await runProcess('diff', ['-r', join(dir, 'share', 'tree'), join(dl, 'tree')]);
  assert.equal(diff.code, 0, diff.stdout + diff.stderr);
  assert.deepEqual((await count(dl)).leftovers, []);
});

test('globs and names in one command; an identical file is not fetched again, a different one is saved beside it', async () => {
  const dl = join(dir, 'dl-globs');
  const pngs = (await readdir(join(dir, 'share', 'tree'), { recursive: true })).filter((n) => n.endsWith('.png'));
  // One .png already there with the same bytes, one with other bytes.
  const same = pngs.find((n) => !n.includes('/') && n !== 'file-0.png')!;
  await mkdir(dl, { recursive: true });
  await writeFile(join(dl, same), await readFile(join(dir, 'share', 'tree', same)));
  const top = pngs.filter((n) => !n.includes('/'));
  const other = top.find((n) => n !== same)!;
  await writeFile(join(dl, other), 'not the same bytes');

  const res = await runCli(['get', 'folders', 'tree/**/*.png', 'alone.txt', '--registry', reg.url, '--downloads', dl, '--json'], { timeoutMs: 120_000 });
  assertExit(res, 0);
  const doc = parseDoc(res.stdout);
  assert.equal(doc.files.length, pngs.length + 1);
  assert.equal(doc.present, 1);
  assert.equal(doc.files.find((f) => f.name === `tree/${same}`)?.status, 'present');
  assert.equal(doc.files.find((f) => f.name === `tree/${other}`)?.path, join(dl, other.replace(/\.png$/, ' (1).png')));
  assert.equal(await readFile(join(dl, other), 'utf8'), 'not the same bytes'); // never overwritten
  assert.equal(await readFile(join(dl, 'alone.txt'), 'utf8'), 'one file on its own\n');
  for (const n of pngs.filter((n) => n.includes('/'))) {
    assert.deepEqual(await readFile(join(dl, n)), await readFile(join(dir, 'share', 'tree', n)), n);
  }
});

test('a NAME that matches nothing fails with exit 4 before anything is fetched', async () => {
  const dl = join(dir, 'dl-none');
  const res = await runCli(['get', 'folders', 'alone.txt', 'tree/*.gif', '--registry', reg.url, '--downloads', dl]);
  assert.equal(res.code, 4);
  assert.match(res.stderr, /nothing on folders matches 'tree\/\*\.gif'/);
  assert.equal(res.stderr.trim().split('\n').length, 1);
  assert.equal((await count(dl).catch(() => ({ files: 0 }))).files, 0);
});

test('a name holding a glob character, named alone, is that one file, fetched as a single get', async () => {
  const dl = join(dir, 'dl-literal');
  const res = await runCli(['get', 'folders', 'lit*eral.txt', '--registry', reg.url, '--downloads', dl, '--json']);
  assertExit(res, 0);
  const doc = JSON.parse(res.stdout) as { name: string; path: string };
  assert.equal(doc.name, 'lit*eral.txt');
  assert.equal(await readFile(doc.path, 'utf8'), 'a glob character in a name\n');
});
