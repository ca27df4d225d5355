// The UI wired into the one-shot commands, through the built CLI: `files` shows sizes and image
// dimensions; `get` draws a progress bar, a result line and a JPEG preview on a real
// pseudo-terminal (util-linux `script`), and keeps stdout/stderr clean for scripts.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { formatBytes } from '../../src/ui/format';
import { sampleJpeg, sampleText } from '../../src/ui/sample';
import { CLI, runCli, tempDir, type RunningCli, TEST_CONFIG_HOME } from '../support/cli';
import { randomFile, registry, sha256, startPeer } from '../peer/support';

const SCRIPT = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p)) ?? (spawnSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' }).stdout.trim() || undefined);
const noPty = SCRIPT ? false : '!!! SKIPPED: util-linux `script` not found (apt-get install bsdutils); progress bar and preview on a terminal untested !!!';
if (noPty && process.env.CI === 'true') throw new Error('`script` (util-linux) is required under CI for the terminal UI tests');

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
let dir: string;
let cleanup: () => Promise<void>;
let reg: Awaited<ReturnType<typeof registry>>;
let owner: RunningCli;
const BIG = 24 * 1024 * 1024;
let bigDigest = '';

before(async () => {
  ({ dir, cleanup } = await tempDir());
  const share = join(dir, 'share');
  await mkdir(share);
  await writeFile(join(share, 'pic.jpg'), sampleJpeg());
  await writeFile(join(share, 'notes.txt'), sampleText());
  await copyFile(join(import.meta.dirname, '../fixtures/tiny.png'), join(share, 'tiny.png'));
  bigDigest = await randomFile(join(share, 'big.bin'), BIG);
  reg = await registry();
  owner = (await startPeer('owner', reg.url, share, ['--share', share])).cli;
});

after(async () => {
  await owner?.stop();
  await reg?.close();
  await cleanup?.();
});

/** Runs the CLI on a pseudo-terminal of 100 columns; stdout and stderr both land in `raw`. */
function onTerminal(args: string[], env: Record<string, string | undefined>, timeoutMs = 60_000): Promise<{ code: number | null; raw: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = `stty cols 100 rows 40; exec ${[process.execPath, CLI, ...args].map(quote).join(' ')}`;
  const full: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', P2PSHARE_REGISTRY: reg.url, XDG_CONFIG_HOME: TEST_CONFIG_HOME };
  delete full.NO_COLOR;
  delete full.CI;
  delete full.COLORTERM;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete full[k];
    else full[k] = v;
  }
  return new Promise((resolve, reject) => {
    const proc = spawn(SCRIPT!, ['-qfec', cmd, '/dev/null'], { cwd: dir, env: full, stdio: ['pipe', 'pipe', 'pipe'] });
    let raw = '';
    // Decoded as a stream: a multi-byte '▀' may be split across chunks.
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (raw += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (raw += d));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs} ms: ${raw.replace(ANSI, '').slice(-500)}`));
    }, timeoutMs);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, raw });
    });
  });
}

test('files --json keeps its shape and adds width/height for images; the table shows sizes and dimensions', async () => {
  const json = await runCli(['files', 'owner', '--registry', reg.url, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const files = JSON.parse(json.stdout).files as Record<string, unknown>[];
  const byName = new Map(files.map((f) => [f.name as string, f]));
  assert.deepEqual(Object.keys(byName.get('share/notes.txt')!).sort(), ['kind', 'name', 'sha256', 'size']);
  assert.deepEqual([byName.get('share/pic.jpg')!.width, byName.get('share/pic.jpg')!.height], [640, 480]);
  assert.deepEqual([byName.get('share/tiny.png')!.width, byName.get('share/tiny.png')!.height], [37, 23]);
  assert.equal(byName.get('share/big.bin')!.width, undefined);

  const table = await runCli(['files', 'owner', '--registry', reg.url]);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  const picSize = formatBytes((await stat(join(dir, 'share/pic.jpg'))).size);
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.ok(lines.some((l) => new RegExp(`^share/pic\\.jpg +${esc(picSize)} {2}image 640 × 480 +udp$`).test(l)), table.stdout);
  assert.ok(lines.some((l) => /^share\/big\.bin +24\.0 MiB {2}other +tcp$/.test(l)), table.stdout);
  assert.ok(lines.some((l) => /^share\/tiny\.png +438 B {2}image 37 × 23 +udp$/.test(l)), table.stdout);
  // Columns line up: every size ends in the same column.
  const sizeEnds = lines.map((l) => l.search(/ {2}(image|text|other)/));
  assert.equal(new Set(sizeEnds).size, 1, table.stdout);
});

test('get piped: the saved path alone on stdout and nothing on stderr (no bar off a terminal)', async () => {
  const res = await runCli(['get', 'owner', 'share/big.bin', '--registry', reg.url, '--downloads', join(dir, 'dl-pipe')]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, `${join(dir, 'dl-pipe', 'big.bin')}\n`);
  assert.equal(res.stderr, '');
  assert.equal(await sha256(join(dir, 'dl-pipe', 'big.bin')), bigDigest);
});

test('get on a terminal: progress bar redrawn in place, erased, then the result line', { skip: noPty }, async () => {
  const res = await onTerminal(['get', 'owner', 'share/big.bin', '--downloads', 'dl-tty'], {});
  assert.equal(res.code, 0, res.raw);
  const frames = res.raw.split('\r\x1b[2K');
  assert.ok(frames.length >= 3, `a bar was drawn and erased: ${JSON.stringify(res.raw.slice(0, 300))}`);
  const bars = frames.slice(1, -1).map((f) => f.replace(ANSI, ''));
  for (const bar of bars) {
    assert.match(bar, /^share\/big\.bin {2}\[[#-]+\] +[\d.]+ (B|KiB|MiB) \/ 24\.0 MiB +\d+%/);
    assert.ok([...bar].length <= 99, `fits 100 columns: ${bar}`);
  }
  const last = frames.at(-1)!.replace(ANSI, '');
  assert.match(last, /^✓ saved dl-tty\/big\.bin {2}24\.0 MiB in [\d.]+ (ms|s) \([\d.]+ (KiB|MiB|GiB)\/s over tcp\), SHA-256 verified\r?\n$/);
  assert.equal(await sha256(join(dir, 'dl-tty', 'big.bin')), bigDigest);
});

test('get of a JPEG on a terminal shows the preview and its size; NO_COLOR drops the preview', { skip: noPty }, async () => {
  const res = await onTerminal(['get', 'owner', 'share/pic.jpg', '--via', 'tcp', '--downloads', 'dl-pic'], { COLORTERM: 'truecolor' });
  assert.equal(res.code, 0, res.raw);
  const lines = res.raw.split(/\r?\n/);
  const cells = lines.filter((l) => l.includes('▀'));
  assert.equal(cells.length, 24, 'a 640 x 480 picture in 64 columns is 24 lines');
  for (const l of cells) {
    assert.equal(l.replace(ANSI, ''), '▀'.repeat(64));
    assert.match(l, /^\x1b\[38;2;\d+;\d+;\d+;48;2;\d+;\d+;\d+m▀/);
  }
  assert.ok(lines.some((l) => l.replace(ANSI, '') === '640 × 480'), res.raw.replace(ANSI, ''));
  assert.match(res.raw.replace(ANSI, ''), /✓ saved dl-pic\/pic\.jpg .*SHA-256 verified/);

  const in256 = await onTerminal(['get', 'owner', 'share/pic.jpg', '--via', 'tcp', '--downloads', 'dl-pic'], {});
  assert.equal(in256.code, 0, in256.raw);
  assert.match(in256.raw, /\x1b\[38;5;\d+;48;5;\d+m▀/);
  assert.doesNotMatch(in256.raw, /38;2;/);

  const plain = await onTerminal(['get', 'owner', 'share/pic.jpg', '--via', 'tcp', '--downloads', 'dl-pic'], { NO_COLOR: '1' });
  assert.equal(plain.code, 0, plain.raw);
  assert.doesNotMatch(plain.raw, /▀/);
  assert.doesNotMatch(plain.raw, /× 480/);
  assert.match(plain.raw, /✓ saved dl-pic\/pic \(2\)\.jpg/);
});

test('get on a terminal under CI or with --json draws no bar and no preview', { skip: noPty }, async () => {
  const ci = await onTerminal(['get', 'owner', 'share/big.bin', '--downloads', 'dl-ci'], { CI: 'true' });
  assert.equal(ci.code, 0, ci.raw);
  assert.doesNotMatch(ci.raw, /\x1b\[2K/);
  assert.match(ci.raw.replace(ANSI, ''), /^✓ saved dl-ci\/big\.bin .*SHA-256 verified\r?\n$/);

  const json = await onTerminal(['get', 'owner', 'share/pic.jpg', '--via', 'tcp', '--downloads', 'dl-json', '--json'], { COLORTERM: 'truecolor' });
  assert.equal(json.code, 0, json.raw);
  assert.doesNotMatch(json.raw, /\x1b\[|▀/);
  const doc = JSON.parse(json.raw.trim());
  assert.deepEqual(Object.keys(doc).sort(), ['bytesTransferred', 'name', 'path', 'resumedFrom', 'route', 'seconds', 'sha256', 'size', 'via']);
  assert.equal(doc.path, join('dl-json', 'pic.jpg'));
});
