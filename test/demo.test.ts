// `p2pshare demo` as a user runs it (the built CLI): exits 0 quickly, both files fetched
// byte-exact (checked on the files it keeps with --keep, and against the SHA-256 it prints),
// the text over TCP, the image over UDP,
// and without --keep nothing is left behind.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import jpeg from 'jpeg-js';
import { CLI, runCli, tempDir } from './support/cli';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('demo exits 0 and both files it fetched are byte-exact', { timeout: 60_000 }, async (t) => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run \`node build.mjs\` first (npm test does)`);
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const keep = join(dir, 'kept');
  const r = await runCli(['demo', '--keep', keep], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.equal(r.stderr, '', 'nothing on stderr (no TTY: no progress bar, no warning)');

  // The UDP transport is part of the build: the image must really travel over UDP.
  assert.doesNotMatch(r.stdout, /no UDP transport/);
  const expectations = [
    { name: 'my_file.txt', via: 'TCP' },
    { name: 'my_file.jpg', via: 'UDP' },
  ];
  for (const { name, via } of expectations) {
    const original = await readFile(join(keep, 'alice', name));
    const fetched = await readFile(join(keep, 'bob', 'downloads', name));
    assert.ok(original.length > 0, `${name} is not empty`);
    assert.ok(original.equals(fetched), `${name}: bob's copy is byte-exact`);
    const line = r.stdout.split('\n').find((l) => l.startsWith(`✓ ${name}:`));
    assert.ok(line, `a result line for ${name}\n${r.stdout}`);
    assert.match(line, new RegExp(`over ${via} .*SHA-256 verified ${sha256(original)}$`));
  }
  assert.deepEqual((await readdir(join(keep, 'bob', 'downloads'))).sort(), ['my_file.jpg', 'my_file.txt'], 'no .part or extra file left');
  assert.match(r.stdout, /both files fetched and verified/);

  // The sample files are what they claim: readable text, and a JPEG that decodes.
  const text = await readFile(join(keep, 'alice', 'my_file.txt'), 'utf8');
  assert.ok(text.length > 100 && !text.includes('\uFFFD'), 'my_file.txt is readable UTF-8 text');
  const image = jpeg.decode(await readFile(join(keep, 'alice', 'my_file.jpg')), { maxResolutionInMP: 10 });
  assert.ok(image.width >= 16 && image.height >= 16, `my_file.jpg decodes (${image.width} x ${image.height})`);
});

test('demo without --keep removes its temporary folder; --keep refuses a folder in use', { timeout: 60_000 }, async (t) => {
  const r = await runCli(['demo'], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const m = r.stdout.match(/saves to (\S+)[\\/]bob[\\/]downloads/);
  assert.ok(m, r.stdout);
  assert.equal(existsSync(m[1]!), false, `${m[1]} was removed`);
  assert.match(r.stdout, /cleaned up/);

  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  await writeFile(join(dir, 'precious.txt'), 'mine');
  const refused = await runCli(['demo', '--keep', dir], { timeoutMs: 20_000 });
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /must be empty or missing/);
  assert.equal(await readFile(join(dir, 'precious.txt'), 'utf8'), 'mine');
});
