// A share of 100,000 files (issue 15, item 6): the owner serves as soon as the folders are
// walked, hashes in the background, and `files` lists it page by page over LIST. Real files in
// a temp folder (empty or tiny, 4 levels deep), a real registry, the CLI as the requester.
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readyLine } from '../../src/commands/interactive';
import { Peer } from '../../src/peer/peer';
import { ShareIndex } from '../../src/peer/share';
import { runCli, startCli } from '../support/cli';
import { registry } from './support';

const A = 10;
const B = 10;
const FILES_PER_FOLDER = 1000;
const TOTAL = A * B * FILES_PER_FOLDER;
let dir: string;
let cleanup: () => Promise<void>;
let root: string;

/** Shared name of file k of folder (a, b). */
const nameOf = (a: number, b: number, k: number) => `big/a${a}/b${b}/f${String(k).padStart(4, '0')}.txt`;
/** Most files empty, every seventh a few bytes: hashing them costs opens, not reading. */
const contentOf = (a: number, b: number, k: number) => (k % 7 === 0 ? `file ${a}/${b}/${k}\n` : '');

before(async () => {
  // In memory where there is a tmpfs: creating 100,000 files on a busy disk took 100 s here.
  const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  dir = await mkdtemp(join(shm, 'p2pshare-test-'));
  cleanup = () => rm(dir, { recursive: true, force: true });
  root = join(dir, 'big');
  const started = performance.now();
  // Synchronous calls: five times faster here than as many promises through libuv's thread pool.
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) {
      const folder = join(root, `a${a}`, `b${b}`);
      mkdirSync(folder, { recursive: true });
      for (let k = 0; k < FILES_PER_FOLDER; k++) {
        const fd = openSync(join(folder, `f${String(k).padStart(4, '0')}.txt`), 'w');
        const content = contentOf(a, b, k);
        if (content) writeSync(fd, content);
        closeSync(fd);
      }
    }
  }
  console.log(`# created ${TOTAL} files in ${((performance.now() - started) / 1000).toFixed(1)} s`);
});

after(async () => {
  await cleanup();
});

test('100,000 files: ready before hashing ends, listed page by page, a prefix lists its subtree, a file not hashed yet still verifies', async () => {
  const reg = await registry();
  const walkStarted = performance.now();
  const share = await ShareIndex.scan([root]);
  const walked = performance.now() - walkStarted;
  const peer = await Peer.start({ name: 'hoard', registryUrl: reg.url, share, port: 0 });
  const downloads = join(dir, 'downloads');
  try {
    const line = readyLine(peer, share);
    const pendingAtReady = share.pending;
    console.log(`# walked in ${(walked / 1000).toFixed(1)} s; ready with ${pendingAtReady} of ${TOTAL} files not hashed yet`);
    assert.match(line, new RegExp(`ready on udp/tcp port ${peer.port}, .*sharing ${TOTAL} files`));
    assert.ok(pendingAtReady > 0, 'ready only once every file was hashed');
    assert.equal(share.list().length, TOTAL);

    // The last file in list order: the background comes to it last. A GET for it now makes the
    // owner hash it first, and the requester still checks the bytes against the real digest.
    const last = nameOf(A - 1, B - 1, FILES_PER_FOLDER - 7); // a seventh: not empty
    const lastIndex = share.list().findIndex((f) => f.name === last);
    assert.equal(share.list()[lastIndex]!.sha256, null, 'not hashed yet when asked for');
    const t0 = performance.now();
    const got = await runCli(['get', 'hoard', last, '--registry', reg.url, '--downloads', downloads, '--json'], { timeoutMs: 60_000 });
    assert.equal(got.code, 0, got.stderr);
    const doc = JSON.parse(got.stdout) as { sha256: string; path: string };
    assert.equal(await readFile(doc.path, 'utf8'), contentOf(A - 1, B - 1, FILES_PER_FOLDER - 7));
    assert.equal(doc.sha256, share.list()[lastIndex]!.sha256, 'fetched with the digest the owner computed');
    const stillPendingBefore = share.list().slice(0, lastIndex).some((f) => f.sha256 === null);
    assert.ok(stillPendingBefore, 'the background (in list order) had not come to it: it was hashed on demand');

    // The whole list, page by page.
    const answered = peer.control.listsAnswered;
    const all = await runCli(['files', 'hoard', '--registry', reg.url, '--json'], { timeoutMs: 60_000 });
    assert.equal(all.code, 0, all.stderr);
    const listed = (JSON.parse(all.stdout) as { files: Array<{ name: string; sha256: string | null }> }).files;
    const pages = peer.control.listsAnswered - answered;
    console.log(`# get ${((performance.now() - t0) / 1000).toFixed(1)} s in all, list included`);
    console.log(`# files listed ${listed.length} entries in ${pages} LIST answers, ${listed.filter((f) => f.sha256 === null).length} without a digest yet`);
    assert.equal(listed.length, TOTAL);
    assert.equal(new Set(listed.map((f) => f.name)).size, TOTAL, 'every file exactly once');
    assert.ok(pages > 1, `${pages} LIST answers`);
    assert.ok(listed.some((f) => f.name === last && f.sha256 === doc.sha256));

    // One folder's subtree.
    const prefix = 'big/a3/b7/';
    const sub = await runCli(['files', 'hoard', prefix, '--registry', reg.url, '--json'], { timeoutMs: 60_000 });
    assert.equal(sub.code, 0, sub.stderr);
    const subNames = (JSON.parse(sub.stdout) as { files: Array<{ name: string }> }).files.map((f) => f.name);
    assert.deepEqual(subNames, Array.from({ length: FILES_PER_FOLDER }, (_, k) => nameOf(3, 7, k)));
    const none = await runCli(['files', 'hoard', 'big/a3/b7/nothing-here', '--registry', reg.url]);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /shares no files under 'big\/a3\/b7\/nothing-here'/);

    // The background moves on meanwhile (that it ends with every digest: test/peer/share.test.ts).
    assert.ok(share.pending < pendingAtReady, 'the background hashing moves on');
    assert.equal(share.failed, 0);
  } finally {
    share.close();
    await peer.stop();
    await reg.close();
  }
});

test('`p2pshare peer` on 10,000 of them prints its ready line, then says it hashes them in the background', async () => {
  const reg = await registry();
  // One tenth of the tree: the walk above proved the scale; this is about what the command says.
  const cli = startCli(['peer', '--name', 'hoarder', '--registry', reg.url, '--no-interactive', '--share', join(root, 'a0')], { cwd: dir });
  try {
    await cli.waitForLine(new RegExp(`^peer hoarder ready on udp/tcp port \\d+, .*sharing ${TOTAL / A} files`), 60_000);
    for (let waited = 0; !/\n/.test(cli.stderr) && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    assert.match(cli.stderr, /^hashing [\d,]+ (of 10,000 )?files in the background/m);
    for (let waited = 0; !/^hashed /m.test(cli.stderr) && waited < 60_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    assert.match(cli.stderr, /^hashed [\d,]+ files? in [\d.]+ s$/m, 'one line when the background hashing is over');
  } finally {
    assert.equal(await cli.stop('SIGTERM'), 0);
    await reg.close();
  }
});
