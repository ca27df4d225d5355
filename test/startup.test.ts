// Start-up stays as light as Node's own (README "Start-up"): the bundle evaluates only what a run
// uses. Checked on the bundle itself, not on the clock: build.mjs's build with one extra plugin
// that makes every module report when it is evaluated, then the real commands run on it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { Script } from 'node:vm';
import { after, before, test } from 'node:test';
import type { Plugin } from 'esbuild';
import { runProcess, startProcess, tempDir, TEST_CONFIG_HOME } from './support/cli';

const ROOT = resolve(__dirname, '..');
/** Dependencies that a run must not evaluate unless it uses them. */
const HEAVY = /^node_modules\/(ioredis|@ioredis|prompts|jpeg-js)\//;

/** Appends `globalThis.__evaluated.push(path)` to every module: it runs once the module's body has. */
const traceEvaluation: Plugin = {
  name: 'trace-evaluation',
  setup(b) {
    b.onLoad({ filter: /\.(ts|js|cjs|mjs)$/ }, async (args) => ({
      contents: `${await readFile(args.path, 'utf8')}\n;globalThis.__evaluated?.push(${JSON.stringify(relative(ROOT, args.path))});`,
      loader: args.path.endsWith('.ts') ? 'ts' : 'js',
    }));
  },
};

let dir: string;
let cleanup: () => Promise<void>;
let bundle: string;
let preload: string;

before(async () => {
  ({ dir, cleanup } = await tempDir('p2pshare-startup-'));
  bundle = join(dir, 'traced.cjs');
  preload = join(dir, 'trace.cjs');
  const { buildBundle } = (await import(join(ROOT, 'build.mjs'))) as { buildBundle(o: { outfile: string; plugins: Plugin[] }): Promise<unknown> };
  await buildBundle({ outfile: bundle, plugins: [traceEvaluation] });
  // Written at exit: the modules evaluated, and the built-in modules Node loaded (fetch's undici among them).
  await writeFile(
    preload,
    `globalThis.__evaluated = [];
process.on('exit', () => require('node:fs').writeFileSync(process.env.TRACE_OUT, JSON.stringify({ modules: globalThis.__evaluated, builtins: process.moduleLoadList })));`,
  );
});
after(() => cleanup());

interface Trace {
  modules: string[];
  builtins: string[];
}

let runs = 0;
function traceEnv(): { env: NodeJS.ProcessEnv; out: string } {
  const out = join(dir, `trace-${runs++}.json`);
  return { out, env: { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: TEST_CONFIG_HOME, P2PSHARE_REDIS_URL: '', TRACE_OUT: out } };
}

async function traced(args: string[]): Promise<Trace & { stdout: string }> {
  const { env, out } = traceEnv();
  const r = await runProcess(process.execPath, ['-r', preload, bundle, ...args], { env });
  assert.equal(r.code, 0, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return { ...(JSON.parse(await readFile(out, 'utf8')) as Trace), stdout: r.stdout };
}

const heavy = (t: Trace) => t.modules.filter((m) => HEAVY.test(m));

test('--version is answered before the program is compiled: no module of it evaluated, no fetch', async () => {
  const t = await traced(['--version']);
  assert.equal(t.stdout, `${(JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`);
  assert.deepEqual(t.modules, []);
  assert.deepEqual(t.builtins.filter((b) => /undici|worker_threads|\btls\b|readline|NativeModule vm$/.test(b)), []);
});

test('any other first argument runs the program from its comment: --help evaluates the entry point and every command, nothing heavy', async () => {
  const t = await traced(['--help']);
  assert.match(t.stdout, /^p2pshare \d+\.\d+\.\d+ .*\n[^]*serve-registry/);
  assert.ok(t.modules.includes('src/cli.ts'));
  assert.ok(t.modules.includes('src/commands/get.ts'));
  assert.deepEqual(heavy(t).filter((m) => !/jpeg-js/.test(m)), []); // the demo loads it
});

test('a command loads its own module only; `get` leaves jpeg-js to the preview worker; the demo, which draws, loads it; a peer loads prompts only to ask', async () => {
  const get = await traced(['get', '--help']);
  assert.ok(get.modules.includes('src/commands/get.ts'));
  assert.deepEqual(get.modules.filter((m) => /^src\/commands\/(?!get|args)/.test(m)), []);
  assert.deepEqual(heavy(get), []);
  // The control: the trace does see dependencies when a command does load them.
  const demo = await traced(['demo', '--help']);
  assert.ok(demo.modules.some((m) => m.startsWith('node_modules/jpeg-js/')), 'demo should load jpeg-js (its sample picture)');
  // A peer loads prompts at its first question, which `peer --no-interactive` never asks.
  const peer = await traced(['peer', '--help']);
  assert.ok(peer.modules.includes('src/commands/interactive.ts'));
  assert.deepEqual(heavy(peer), []);
});

test('the program survives its comment: what programOf reads back is what was embedded, "*/" and "~" included', async () => {
  const { embedProgram, programOf } = (await import(join(ROOT, 'build.mjs'))) as { embedProgram(program: string, version: string): string; programOf(text: string): string };
  const tricky = 'var a = "*/ ~ ~0 ~1 ~~1 */*/"; /* a comment */ var b = /x*\\//.test("x*/");';
  assert.equal(programOf(embedProgram(tricky, '9.9.9')), tricky);
  // The bundle the other tests run: its program compiles as it is read back.
  assert.doesNotThrow(() => new Function(programOf(readFileSync(bundle, 'latin1'))));
});

test('the bundle carries a V8 code cache of its program that this Node accepts; a bundle carrying a cache made for other source runs all the same', async () => {
  const build = (await import(join(ROOT, 'build.mjs'))) as { programOf(text: string): string; codeCacheOf(text: string): Buffer | undefined; wrappedProgram(program: string): string };
  const text = readFileSync(bundle, 'latin1');
  const cachedData = build.codeCacheOf(text);
  assert.ok(cachedData && cachedData.length > 10_000, 'no code cache in the bundle');
  const program = build.programOf(text);
  assert.equal(new Script(build.wrappedProgram(program), { cachedData }).cachedDataRejected, false);
  // The control: V8 checks the cache against the source it is given (and its own version and flags).
  const other = new Script(build.wrappedProgram(`${program};`)).createCachedData();
  assert.equal(new Script(build.wrappedProgram(program), { cachedData: other }).cachedDataRejected, true);
  // What a bundle run by another Node meets: a cache V8 refuses, so it compiles the program itself.
  const foreign = join(dir, 'foreign-cache.cjs');
  await writeFile(foreign, text.replace(cachedData.toString('base64'), other.toString('base64')), 'latin1');
  const r = await runProcess(process.execPath, [foreign, 'get', '--help'], { env: traceEnv().env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: p2pshare get /);
});

test('serve-registry with the memory store runs without evaluating ioredis', async () => {
  const { env, out } = traceEnv();
  const reg = startProcess(process.execPath, ['-r', preload, bundle, 'serve-registry', '--host', '127.0.0.1', '--port', '0', '--stun-port', '0'], { env });
  try {
    await reg.waitForLine(/http:\/\/127\.0\.0\.1:\d+/);
  } finally {
    assert.equal(await reg.stop('SIGTERM'), 0);
  }
  const t = JSON.parse(await readFile(out, 'utf8')) as Trace;
  assert.ok(t.modules.includes('src/registry/memory-store.ts'));
  assert.deepEqual(heavy(t), []);
  assert.deepEqual(t.builtins.filter((b) => /undici/.test(b)), []);
});
