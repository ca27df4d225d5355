// The standalone executable (Node SEA, scripts/sea.mjs): built for this machine, it runs with no
// Node on PATH, prints the package version without an experimental-feature warning, runs the demo
// (fetching and verifying both sample files), and a cross-built target has the right executable format.
import { TEST_CONFIG_HOME } from './support/cli';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');
const BUNDLE = join(ROOT, 'dist', 'p2pshare.cjs');
const EXE = join(ROOT, 'dist', 'p2pshare');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const PINS = JSON.parse(readFileSync(join(ROOT, 'scripts', 'sea-targets.json'), 'utf8')) as {
  targets: Record<string, { package: string; version: string; binary: string }>;
};
const BUILD_TIMEOUT_MS = 180_000;
const RUN_TIMEOUT_MS = 120_000;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a process to completion; kills it and rejects after timeoutMs. */
function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Result> {
  const proc = spawn(cmd, args, { cwd: ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${opts.timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs);
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

function describe(r: Result): string {
  return `exit ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** An environment whose PATH is one empty folder: no `node` can be found through it. */
async function envWithoutNode(): Promise<{ env: NodeJS.ProcessEnv; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'p2pshare-nopath-'));
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: dir, NO_COLOR: '1', XDG_CONFIG_HOME: TEST_CONFIG_HOME };
  delete env.NODE_OPTIONS;
  delete env.P2PSHARE_REGISTRY;
  delete env.P2PSHARE_REDIS_URL;
  for (const d of (env.PATH ?? '').split(delimiter)) {
    assert.deepEqual((await readdir(d)).filter((f) => /^node(\.exe)?$/.test(f)), [], `node found in ${d}`);
  }
  return { env, dir };
}

const hostIsLinuxX64 = process.platform === 'linux' && process.arch === 'x64';

test('standalone executable (Node SEA)', { skip: hostIsLinuxX64 ? false : 'the SEA test builds linux-x64 and runs it; this machine is not linux-x64', timeout: 600_000 }, async (t) => {
  if (!existsSync(BUNDLE)) {
    const b = await run(process.execPath, ['build.mjs'], { timeoutMs: BUILD_TIMEOUT_MS });
    assert.equal(b.code, 0, `node build.mjs failed: ${describe(b)}`);
  }
  const built = await run(process.execPath, ['scripts/sea.mjs', '--targets', 'linux-x64'], { timeoutMs: BUILD_TIMEOUT_MS });
  assert.equal(built.code, 0, `sea.mjs failed: ${describe(built)}`);
  const size = (await stat(EXE)).size;
  assert.ok(size > 10 * 2 ** 20, `dist/p2pshare is only ${size} bytes`);

  const { env, dir } = await envWithoutNode();
  t.after(() => rm(dir, { recursive: true, force: true }));

  await t.test('--version runs with no node on PATH and no experimental warning', async () => {
    const r = await run(EXE, ['--version'], { env, timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(r.code, 0, describe(r));
    assert.equal(r.stdout.trim(), VERSION);
    assert.doesNotMatch(r.stderr, /experimental/i);
    assert.doesNotMatch(r.stdout, /experimental/i);
  });

  await t.test('it is the bundle, not a bare node: --help lists the subcommands', async () => {
    const r = await run(EXE, ['--help'], { env, timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(r.code, 0, describe(r));
    assert.match(r.stdout, new RegExp(`^p2pshare ${VERSION.replace(/\./g, '\\.')} `));
    assert.match(r.stdout, /serve-registry/);
  });

  await t.test('format check passes on the executable and rejects a bare Node binary', async () => {
    const ok = await run(process.execPath, ['scripts/check-dist.mjs', '--targets', 'linux-x64', '--no-sums'], { timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(ok.code, 0, describe(ok));
    assert.match(ok.stdout, /elf-x86-64\s+SEA blob injected/);
    // A Node binary without the blob: right format, fuse not flipped.
    const bare = await mkdtemp(join(tmpdir(), 'p2pshare-bare-'));
    try {
      const pin = PINS.targets['linux-x64']!;
      await copyFile(join(ROOT, '.cache', 'node-sea', `${pin.package}-${pin.version}`, pin.binary), join(bare, 'p2pshare'));
      const bad = await run(process.execPath, ['scripts/check-dist.mjs', '--dir', bare, '--targets', 'linux-x64', '--no-sums'], { timeoutMs: RUN_TIMEOUT_MS });
      assert.equal(bad.code, 1, describe(bad));
      assert.match(bad.stderr, /fuse unarmed/);
    } finally {
      await rm(bare, { recursive: true, force: true });
    }
  });

  await t.test('demo runs inside the executable with no node on PATH', async () => {
    const r = await run(EXE, ['demo'], { env, timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(r.code, 0, describe(r));
    assert.doesNotMatch(r.stderr, /experimental/i);
    assert.doesNotMatch(r.stdout, /experimental/i);
    // Both files really travelled and were verified inside the executable (SHA-256 printed in full).
    assert.match(r.stdout, /^✓ my_file\.txt: .* over TCP .*SHA-256 verified [0-9a-f]{64}$/m);
    assert.match(r.stdout, /^✓ my_file\.jpg: .* over UDP .*SHA-256 verified [0-9a-f]{64}$/m);
    assert.match(r.stdout, /both files fetched and verified/);
    assert.match(r.stdout, /cleaned up/);
  });

  // The preview worker starts from source text embedded in the bundle (build.mjs): inside the
  // executable no file of ours exists to start it from. The demo draws its JPEG only on a terminal.
  const script = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));
  await t.test('the JPEG preview decodes in its worker inside the executable (demo on a terminal)', { skip: script ? false : 'util-linux script(1) is not installed: no terminal to run the demo on' }, async () => {
    const onTerminal: NodeJS.ProcessEnv = { ...env, TERM: 'xterm-256color' };
    delete onTerminal.NO_COLOR;
    const r = await run(script!, ['-qec', `${EXE} demo`, '/dev/null'], { env: onTerminal, timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(r.code, 0, describe(r));
    assert.match(r.stdout, /\u2580/, 'no half-block picture drawn');
    assert.match(r.stdout, /640 × 480/);
    assert.doesNotMatch(r.stdout, /no preview/);
  });

  await t.test('a cross-built target (linux-arm64) is an ELF aarch64 executable with the blob', async () => {
    const out = await mkdtemp(join(tmpdir(), 'p2pshare-sea-arm64-'));
    try {
      const r = await run(process.execPath, ['scripts/sea.mjs', '--targets', 'linux-arm64', '--out', out], { timeoutMs: BUILD_TIMEOUT_MS });
      assert.equal(r.code, 0, describe(r));
      const check = await run(process.execPath, ['scripts/check-dist.mjs', '--dir', out, '--targets', 'linux-arm64'], { timeoutMs: RUN_TIMEOUT_MS });
      assert.equal(check.code, 0, describe(check));
      assert.match(check.stdout, /p2pshare-linux-arm64\s+elf-aarch64\s+SEA blob injected/);
      const sums = await readFile(join(out, 'SHA256SUMS'), 'utf8');
      assert.match(sums, /^[0-9a-f]{64} {2}p2pshare-linux-arm64\n$/);
      // The x86-64 file under the arm64 name must be refused by the format check.
      await copyFile(EXE, join(out, 'p2pshare-linux-arm64'));
      const wrong = await run(process.execPath, ['scripts/check-dist.mjs', '--dir', out, '--targets', 'linux-arm64', '--no-sums'], { timeoutMs: RUN_TIMEOUT_MS });
      assert.equal(wrong.code, 1, describe(wrong));
      assert.match(wrong.stderr, /expected elf-aarch64, found elf-x86-64/);
      // ...and SHA256SUMS no longer matches the replaced file.
      const verify = await run(process.execPath, ['scripts/check-dist.mjs', '--dir', out, '--verify'], { timeoutMs: RUN_TIMEOUT_MS });
      assert.equal(verify.code, 1, describe(verify));
      assert.match(verify.stderr, /SHA-256 mismatch/);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
