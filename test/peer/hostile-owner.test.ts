// A hostile owner against a real `get`: an owner in this process, on a real secure connection,
// whose share list lies (names with controls and bidi controls, a 300-byte segment, 10 GiB it
// never sends, 8 PiB, a SHA-256 its bytes do not have). Each fetch must end with its exit code
// and one clean line, and leave nothing unexpected on disk (a small disk is a tmpfs, see
// support/tmpfs.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Offer, OfferedFile } from '../../src/control/server';
import { TRAILING_HASH_MIN_BYTES } from '../../src/core/trailing-hash';
import { PrivateKey } from '../../src/core/x25519';
import { kindOf } from '../../src/wire/shared-file';
import { runCli, tempDir } from '../support/cli';
import { mountTmpfs, unmount } from '../support/tmpfs';
import { inProcessOwner, owner } from '../control/support';
import { randomFile, registry, sha256 } from './support';

const GiB = 1024 ** 3;
/** One key for every test's hostile owner: the requester pins it on first contact. */
const HOSTILE_KEY = PrivateKey.generate();
/** "8 PiB": the largest size the wire carries (2^53 − 1 bytes, 1 byte short of 8 PiB). */
const EIGHT_PIB = Number.MAX_SAFE_INTEGER;

/** A share list that says what it likes: the bytes served are those of `path`, whatever `size` says. */
class LyingOffer implements Offer<OfferedFile> {
  private readonly files: OfferedFile[];
  constructor(files: OfferedFile[]) {
    this.files = [...files].sort((a, b) => (a.name < b.name ? -1 : 1)); // LIST order (Offer.list)
  }
  list(): OfferedFile[] {
    return this.files;
  }
  async lookup(name: string): Promise<OfferedFile | undefined> {
    return this.files.find((f) => f.name === name);
  }
  async isCurrent(): Promise<boolean> {
    return true;
  }
}

const BAD_NAMES: Array<[string, string]> = [
  ['an escape sequence', 'red\x1b[31m.txt'],
  ['a newline', 'two\nlines.txt'],
  ['a C1 control (CSI)', 'c1\u009b2J.txt'],
  ['a right-to-left override', 'photo\u202Egpj.exe'],
  ['a first-strong isolate', 'iso\u2068late.txt'],
  ['a 300-byte last segment', `${'x'.repeat(296)}.txt`],
  ['a 256-byte folder segment', `${'y'.repeat(256)}/f.txt`],
];

/** Characters that must never reach a terminal or a script raw (a newline only ends a line). */
const RAW_UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

function assertOneCleanLine(stderr: string, what: string): void {
  const lines = stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `${what}: one line, got ${JSON.stringify(stderr)}`);
  assert.match(lines[0]!, /^error: /, what);
  assert.doesNotMatch(stderr, RAW_UNSAFE, `${what}: a raw control character reached stderr`);
  assert.doesNotMatch(stderr, /TypeError|RangeError|Invalid typed array|ENAMETOOLONG|node:internal| at \S+:\d+/, `${what}: ${stderr}`);
}

async function hostileOwner(dir: string) {
  const reg = await registry();
  const empty = join(dir, 'served', 'empty');
  const mib = join(dir, 'served', 'mib');
  await randomFile(empty, 0);
  await randomFile(mib, 1024 * 1024);
  const large = join(dir, 'served', 'large');
  await randomFile(large, TRAILING_HASH_MIN_BYTES);
  const fake = (name: string, size: number, path: string): OfferedFile => ({ name, size, path, sha256: randomBytes(32).toString('hex'), kind: kindOf(name) });
  const owner = await inProcessOwner(
    new LyingOffer([
      ...BAD_NAMES.map(([, name]) => fake(name, 1024 * 1024, mib)),
      fake('ten-gib.bin', 10 * GiB, empty), // announces 10 GiB, sends nothing
      fake('ten-gib-mib.bin', 10 * GiB, mib), // announces 10 GiB, sends 1 MiB and hangs up
      fake('eight-pib.bin', EIGHT_PIB, mib),
      fake('wrong-digest.bin', 1024 * 1024, mib), // the size is true, the SHA-256 announced is not
      fake('wrong-digest-large.bin', TRAILING_HASH_MIN_BYTES, large), // the same, hashed behind the writes by a worker
    ]),
    { name: 'hostile', identity: HOSTILE_KEY },
  );
  await owner.register(reg.url);
  return {
    reg,
    owner,
    get: (name: string, downloads: string, ...extra: string[]) => runCli(['get', 'hostile', name, '--registry', reg.url, '--downloads', downloads, ...extra], { timeoutMs: 60_000 }),
    async close() {
      await owner.close();
      await reg.close();
    },
  };
}

const listing = (dir: string) => readdir(dir).catch(() => null);

test('names with controls, bidi controls or segments over 255 bytes are refused (exit 4, one line) before anything touches the disk', async () => {
  const { dir, cleanup } = await tempDir();
  const h = await hostileOwner(dir);
  try {
    for (const [what, name] of BAD_NAMES) {
      for (const via of ['tcp', 'udp']) {
        const downloads = join(dir, `dl-${via}`);
        const res = await h.get(name, downloads, '--via', via);
        assert.equal(res.code, 4, `${what} over ${via}: ${res.stderr}`);
        assertOneCleanLine(res.stderr, what);
        assert.match(res.stderr, /^error: will not fetch .* its name (contains a (bidirectional )?control character \(\\(x[0-9a-f]{2}|u[0-9a-f]{4})\)|has a part of \d+ bytes, more than the 255 a file name may have)/, res.stderr);
        assert.equal(res.stdout, '');
        assert.equal(await listing(downloads), null, `${what}: the downloads folder was created`);
      }
    }
  } finally {
    await h.close();
    await cleanup();
  }
});

test('such names are listed escaped, never raw, and marked unusable; the JSON listing escapes them too', async () => {
  const { dir, cleanup } = await tempDir();
  const h = await hostileOwner(dir);
  try {
    const table = await runCli(['files', 'hostile', '--registry', h.reg.url]);
    assert.equal(table.code, 0, table.stderr);
    assert.doesNotMatch(table.stdout, RAW_UNSAFE, 'a raw control character reached stdout');
    const lines = table.stdout.trimEnd().split('\n');
    assert.equal(lines.length, BAD_NAMES.length + 5, 'one line per entry (a newline in a name would make two)');
    assert.ok(lines.some((l) => l.startsWith('red\\x1b[31m.txt') && l.endsWith('unusable name')), table.stdout);
    assert.ok(lines.some((l) => l.startsWith('two\\x0alines.txt')), table.stdout);
    assert.ok(lines.some((l) => l.startsWith('photo\\u202egpj.exe')), table.stdout);
    assert.equal(lines.filter((l) => l.endsWith('unusable name')).length, BAD_NAMES.length);
    const json = await runCli(['files', 'hostile', '--registry', h.reg.url, '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.doesNotMatch(json.stdout, RAW_UNSAFE, 'a raw control character reached the JSON');
    const names = (JSON.parse(json.stdout).files as Array<{ name: string }>).map((f) => f.name);
    for (const [, name] of BAD_NAMES) assert.ok(names.includes(name), 'the JSON still carries the exact name, escaped');
  } finally {
    await h.close();
    await cleanup();
  }
});

test('an owner announcing 10 GiB and hanging up, again and again, never makes the .part grow beyond what it sent (TCP and UDP)', async () => {
  const { dir, cleanup } = await tempDir();
  const h = await hostileOwner(dir);
  try {
    for (const via of ['tcp', 'udp']) {
      // Nothing at all: each try fails with one line, and leaves nothing behind.
      const nothing = join(dir, `dl-nothing-${via}`);
      for (let i = 0; i < 3; i++) {
        const res = await h.get('ten-gib.bin', nothing, '--via', via);
        assert.equal(res.code, 1, res.stderr);
        assertOneCleanLine(res.stderr, `10 GiB never sent, over ${via}`);
        assert.deepEqual(await listing(nothing), [], `try ${i + 1} over ${via} left ${await listing(nothing)}`);
      }
      // 1 MiB, then nothing more: the .part holds at most what came, however many tries.
      const some = join(dir, `dl-some-${via}`);
      for (let i = 0; i < 3; i++) {
        const res = await h.get('ten-gib-mib.bin', some, '--via', via);
        assert.equal(res.code, 1, res.stderr);
        assertOneCleanLine(res.stderr, `10 GiB announced, 1 MiB sent, over ${via}`);
        const left = (await listing(some)) ?? [];
        assert.ok(left.every((n) => n.endsWith('.part')), `only a .part is left: ${left}`);
        for (const n of left) {
          const size = (await stat(join(some, n))).size;
          assert.ok(size <= 1024 * 1024, `try ${i + 1} over ${via}: the .part grew to ${size} bytes`);
        }
      }
    }
  } finally {
    await h.close();
    await cleanup();
  }
});

test('an owner announcing 10 GiB cannot fill a small disk: refused before the first byte, however often it is asked', async (t) => {
  const { dir, cleanup } = await tempDir();
  const small = join(dir, 'small-fs');
  await mkdir(small);
  if (!mountTmpfs(small, 6, t)) return cleanup();
  const h = await hostileOwner(dir);
  try {
    for (const via of ['tcp', 'udp']) {
      for (let i = 0; i < 3; i++) {
        const res = await h.get('ten-gib-mib.bin', join(small, 'dl'), '--via', via);
        assert.equal(res.code, 1, res.stderr);
        assertOneCleanLine(res.stderr, `10 GiB on a 6 MiB disk, over ${via}`);
        assert.match(res.stderr, /not enough space .* it needs 10\.0 GiB, and [\d.]+ MiB are free/);
        assert.deepEqual(await readdir(small), [], `try ${i + 1} over ${via} wrote to the small disk`);
      }
    }
  } finally {
    await h.close();
    unmount(small);
    await cleanup();
  }
});

test('an announced size of 8 PiB is refused in one clean line (no free-space check passes it, no array is sized by it)', async () => {
  const { dir, cleanup } = await tempDir();
  const h = await hostileOwner(dir);
  try {
    for (const via of ['tcp', 'udp']) {
      const downloads = join(dir, `dl-${via}`);
      const res = await h.get('eight-pib.bin', downloads, '--via', via);
      assert.equal(res.code, 1, res.stderr);
      assertOneCleanLine(res.stderr, `8 PiB over ${via}`);
      assert.match(res.stderr, /not enough space .* it needs 8\.0 PiB/);
      assert.equal(await listing(downloads), null, 'the downloads folder was created');
    }
  } finally {
    await h.close();
    await cleanup();
  }
});

test("an owner whose bytes are not the SHA-256 it announced: the get fails in one line, nothing gets the name, the .part is removed (TCP and UDP, small and large)", async () => {
  const { dir, cleanup } = await tempDir();
  const h = await hostileOwner(dir);
  try {
    for (const name of ['wrong-digest.bin', 'wrong-digest-large.bin']) {
      for (const via of ['tcp', 'udp']) {
        const downloads = join(dir, `dl-${name}-${via}`);
        for (let i = 0; i < 2; i++) {
          const res = await h.get(name, downloads, '--via', via);
          assert.equal(res.code, 1, res.stderr);
          assertOneCleanLine(res.stderr, `a wrong digest over ${via}`);
          assert.match(res.stderr, new RegExp(`integrity check failed for ${name.replace('.', '\\.')}: SHA-256 differs from the owner's; the partial file was removed`));
          assert.equal(res.stdout, '');
          assert.deepEqual(await listing(downloads), [], `try ${i + 1} of ${name} over ${via} left ${await listing(downloads)}`);
        }
      }
    }
  } finally {
    await h.close();
    await cleanup();
  }
});

test('get prints the saved path escaped when stdout is not a terminal', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry();
  const file = join(dir, 'share', 'a.txt');
  const digest = await randomFile(file, 1000);
  const o = await owner([file], { name: 'plain' });
  await o.register(reg.url);
  try {
    const downloads = join(dir, 'dl\x1b[31m\u202e');
    const res = await runCli(['get', 'plain', 'a.txt', '--registry', reg.url, '--downloads', downloads]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `${join(dir, 'dl\\x1b[31m\\u202e', 'a.txt')}\n`);
    assert.equal(await sha256(join(downloads, 'a.txt')), digest);
  } finally {
    await o.close();
    await reg.close();
    await cleanup();
  }
});

test('a folder get from an owner listing traversal and control names under it: those are refused, nothing lands outside --downloads, the rest is fetched', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry();
  const mib = join(dir, 'served', 'mib');
  const digest = await randomFile(mib, 1024 * 1024);
  const file = (name: string): OfferedFile => ({ name, size: 1024 * 1024, path: mib, sha256: digest, kind: kindOf(name) });
  const hostile = ['set/../../escape.txt', 'set/./dot.txt', 'set//empty-segment.txt', 'set/red\x1b[31m.txt', `set/${'x'.repeat(300)}.txt`];
  const h = await inProcessOwner(new LyingOffer([...hostile.map(file), file('set/ok.txt'), file('set/sub/ok2.txt')]), { name: 'hostile', identity: HOSTILE_KEY });
  await h.register(reg.url);
  try {
    const downloads = join(dir, 'deep', 'dl');
    const res = await runCli(['get', 'hostile', 'set/', '--registry', reg.url, '--downloads', downloads, '--json'], { timeoutMs: 60_000 });
    assert.equal(res.code, 4, res.stderr);
    assert.doesNotMatch(res.stdout + res.stderr, RAW_UNSAFE);
    const doc = JSON.parse(res.stdout) as { files: { name: string; status: string; error?: { message: string } }[] };
    const status = Object.fromEntries(doc.files.map((f) => [f.name, f.status]));
    assert.equal(status['set/ok.txt'], 'fetched');
    assert.equal(status['set/sub/ok2.txt'], 'fetched');
    for (const name of hostile) assert.equal(status[name], 'failed', name);
    assert.match(res.stderr, /^error: 5 of 7 files failed: 2 of 7 files in place/m);
    assert.equal(await sha256(join(downloads, 'set', 'sub', 'ok2.txt')), digest);
    assert.deepEqual((await readdir(downloads, { recursive: true })).sort(), ['set', 'set/ok.txt', 'set/sub', 'set/sub/ok2.txt']);
    assert.deepEqual((await readdir(join(dir, 'deep'))).sort(), ['dl'], 'nothing next to --downloads');
    assert.deepEqual((await readdir(dir)).sort(), ['deep', 'served']);
  } finally {
    await h.close();
    await reg.close();
    await cleanup();
  }
});
