// Start-up rows: `p2pshare --version` from the bundle and from the standalone executable beside
// `node -e 0` of the same Node, and a whole-process `get` of a 1080p JPEG on loopback.
//   node build.mjs && node scripts/sea.mjs --targets linux-x64 && node --import tsx bench/startup.ts
//   BENCH_STARTUP_RUNS=40 BENCH_JPEG_RUNS=7 (defaults)
//   BENCH_BEFORE=/path/to/older/p2pshare.cjs also runs that bundle in the same alternation (a
//   before/after comparison: its medians go into the notes).
// Every pair runs alternately (A, B, A, B, ...) and each cell is the median, so outside load
// lands on both sides alike. bench/run.ts prints these rows too (startupRows).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CLI, tempDir } from '../test/support/cli';
import { cliGet, startSetup, writeJpeg } from './peers';
import { loadLine, machineLine, markdownTable, median, revisionLine } from './util';

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 40);
const JPEG_RUNS = Number(process.env.BENCH_JPEG_RUNS ?? 7);
const ROOT = resolve(__dirname, '..');
const EXE = join(ROOT, 'dist', 'p2pshare');
const BEFORE = process.env.BENCH_BEFORE ? resolve(process.env.BENCH_BEFORE) : undefined;

export interface StartupRow {
  label: string;
  ours: string;
  baseline: string;
  ratio: string;
  notes: string;
}

/** Milliseconds from spawn to exit of `cmd args` (output discarded); throws on a non-zero exit. */
function timeOnce(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const proc = spawn(cmd, args, { stdio: 'ignore' });
  return new Promise((res, rej) => {
    proc.on('error', rej);
    proc.on('close', (code) => (code === 0 ? res(performance.now() - t0) : rej(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });
}

/** Alternating runs of each command line; the median of each, in ms. */
async function alternate(cmds: Array<[string, string[]]>, runs: number): Promise<number[]> {
  const times: number[][] = cmds.map(() => []);
  for (const [cmd, args] of cmds) await timeOnce(cmd, args); // warm the page cache
  for (let i = 0; i < runs; i++) {
    for (const [j, [cmd, args]] of cmds.entries()) times[j]!.push(await timeOnce(cmd, args));
  }
  return times.map(median);
}

/** The pinned Node the executable is built from (scripts/sea-targets.json), when it is in the cache. */
function seaNode(): string | undefined {
  const pins = JSON.parse(readFileSync(join(ROOT, 'scripts', 'sea-targets.json'), 'utf8')) as { targets: Record<string, { package: string; version: string; binary: string }> };
  const pin = pins.targets[`${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`];
  const bin = pin && join(ROOT, '.cache', 'node-sea', `${pin.package}-${pin.version}`, pin.binary);
  return bin && existsSync(bin) ? bin : undefined;
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

export async function startupRows(log: (line: string) => void = () => {}): Promise<StartupRow[]> {
  const rows: StartupRow[] = [];
  const [bare, bundle, before] = await alternate([[process.execPath, ['-e', '0']], [process.execPath, [CLI, '--version']], ...(BEFORE ? [[process.execPath, [BEFORE, '--version']] as [string, string[]]] : [])], RUNS);
  rows.push({
    label: `7a. start-up: \`node dist/p2pshare.cjs --version\` vs \`node -e 0\` (${process.version})`,
    ours: ms(bundle!),
    baseline: ms(bare!),
    ratio: (bundle! / bare!).toFixed(2),
    notes: `median of ${RUNS} alternating runs; goal <= 1.20${before ? `; before (${BEFORE}): ${ms(before)}, ratio ${(before / bare!).toFixed(2)}` : ''}`,
  });
  log('start-up: bundle done');
  const node = seaNode();
  if (existsSync(EXE) && node) {
    const [bareSea, exe] = await alternate([[node, ['-e', '0']], [EXE, ['--version']]], RUNS);
    rows.push({
      label: '7b. start-up: `dist/p2pshare --version` (executable) vs `node -e 0` of its own Node',
      ours: ms(exe!),
      baseline: ms(bareSea!),
      ratio: (exe! / bareSea!).toFixed(2),
      notes: `median of ${RUNS} alternating runs; the executable's Node is ${node.split('/').slice(-4, -2).join('/')}; goal <= 1.20`,
    });
  } else {
    rows.push({ label: '7b. start-up: executable', ours: 'n/a', baseline: 'n/a', ratio: '—', notes: 'dist/p2pshare or its pinned Node not built (node scripts/sea.mjs --targets linux-x64)' });
  }
  log('start-up: executable done');
  rows.push(...(await jpegGetRows(bare!)));
  return rows;
}

/** Whole-process `get --json` of a 1080p JPEG from an owner process on loopback, per transport. */
async function jpegGetRows(bareMs: number): Promise<StartupRow[]> {
  const { dir, cleanup } = await tempDir('p2pshare-bench-startup-');
  try {
    const share = join(dir, 'share');
    await mkdir(share, { recursive: true });
    const bytes = await writeJpeg(join(share, 'photo.jpg'), 1920, 1080, 90);
    const setup = await startSetup(share);
    try {
      let n = 0;
      const bundles = BEFORE ? [CLI, BEFORE] : [CLI];
      const results = bundles.map(() => ({ udp: [] as number[], tcp: [] as number[] }));
      const inner = bundles.map(() => ({ udp: [] as number[], tcp: [] as number[] }));
      for (let i = 0; i <= JPEG_RUNS; i++) {
        for (const via of ['udp', 'tcp'] as const) {
          for (const [b, cli] of bundles.entries()) {
            const r = await cliGet({ registryUrl: setup.registryUrl, peer: 'owner', file: 'photo.jpg', via, downloads: join(dir, `dl-${n++}`), timeoutMs: 30_000, cli });
            if (!r.ok) throw new Error(`${cli} get --via ${via}: ${r.failure}`);
            if (i === 0) continue; // the first of each is a warm-up (first contact pins the key)
            results[b]![via].push(r.seconds * 1000);
            if (r.innerSeconds !== undefined) inner[b]![via].push(r.innerSeconds * 1000);
          }
        }
      }
      return (['udp', 'tcp'] as const).map((via) => {
        const ours = results[0]![via];
        const before = results[1]?.[via];
        return {
          label: `7${via === 'udp' ? 'c' : 'd'}. whole-process \`get --via ${via}\` of a 1920×1080 JPEG (${(bytes / 1024).toFixed(0)} KiB) on loopback vs \`node -e 0\``,
          ours: ms(median(ours)),
          baseline: ms(bareMs),
          ratio: (median(ours) / bareMs).toFixed(2),
          notes: `median of ${JPEG_RUNS} (alternating, after one warm-up each); the get's own timer (request to rename) ${ms(median(inner[0]![via]))}; range ${ms(Math.min(...ours))}–${ms(Math.max(...ours))}${before ? `; before: ${ms(median(before))} (own timer ${ms(median(inner[1]![via]))})` : ''}`,
        };
      });
    } finally {
      await setup.close();
    }
  } finally {
    await cleanup();
  }
}

async function main(): Promise<void> {
  const loadBefore = loadLine();
  const rows = await startupRows((line) => process.stderr.write(`${line}\n`));
  console.log(`\n${machineLine()}\n${revisionLine()}`);
  console.log(`load average (1/5/15 min) at start ${loadBefore}, at end ${loadLine()}\n`);
  console.log(markdownTable(['case', 'ours', 'baseline', 'ratio', 'notes'], rows.map((r) => [r.label, r.ours, r.baseline, r.ratio, r.notes]), [1, 2, 3]));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
