// Peak resident memory of both peers while a 2 GiB file moves (the target: under
// 200 MB on either side).   node build.mjs && node --import tsx bench/memory.ts   (MEMORY_GIB=2)
// Per transport: a fresh owner peer sharing a sparse 2 GiB file, and one `get` of it. Both are
// real CLI processes. Their VmHWM (/proc/PID/status) is polled every 100 ms, and a preload
// (NODE_OPTIONS=--require) writes each process's final VmHWM at exit, so the peak of the last
// moments (SHA-256 check, rename) is not missed between polls. Exits 1 if a peak is >= 200 MB or
// a transfer failed; a transport missing from the build is reported as n/a.
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startCli, tempDir, type RunningCli } from '../test/support/cli';
import { registry } from '../test/peer/support';
import { machineLine, markdownTable, revisionLine } from './util';

const FILE_BYTES = Number(process.env.MEMORY_GIB ?? 2) * 1024 ** 3;
const LIMIT_BYTES = 200e6;
const POLL_MS = 100;

const PRELOAD = `
const fs = require('node:fs');
process.on('exit', () => {
  try {
    const kb = /VmHWM:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1];
    fs.writeFileSync(require('node:path').join(process.env.BENCH_HWM_DIR, String(process.pid)), kb);
  } catch {}
});
`;

/** Highest VmHWM seen for one process, in bytes (0 until the first successful read). */
class PeakWatcher {
  peak = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }
  async poll(): Promise<void> {
    try {
      const kb = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${this.pid}/status`, 'utf8'))?.[1];
      if (kb) this.peak = Math.max(this.peak, Number(kb) * 1024);
    } catch {
      // the process is gone; its exit hook has the last word
    }
  }
  /** Stops polling and folds in the value the process wrote at exit. */
  async finish(hwmDir: string): Promise<number> {
    clearInterval(this.timer);
    try {
      this.peak = Math.max(this.peak, Number(await readFile(join(hwmDir, String(this.pid)), 'utf8')) * 1024);
    } catch {
      // no exit record (killed by a signal): the polled peak stands
    }
    return this.peak;
  }
}

interface Result {
  via: string;
  owner?: number;
  ownerIndexing?: number;
  requester?: number;
  seconds?: number;
  outcome: string;
  failed: boolean;
}

async function measure(via: 'tcp' | 'udp', registryUrl: string, share: string, dir: string, hwmDir: string, env: Record<string, string>): Promise<Result> {
  const owner = startCli(['peer', '--name', `mem-${via}`, '--registry', registryUrl, '--share', share, '--no-interactive'], { env });
  const ownerPeak = new PeakWatcher(owner.proc.pid!);
  let getter: RunningCli | undefined;
  const downloads = join(dir, `dl-${via}`);
  try {
    await owner.waitForLine(/ready on udp\/tcp port (\d+)/, 180_000);
    await ownerPeak.poll();
    const ownerIndexing = ownerPeak.peak; // after hashing the share, before any transfer
    const t0 = performance.now();
    getter = startCli(['get', `mem-${via}`, 'big.bin', '--via', via, '--registry', registryUrl, '--downloads', downloads, '--json'], { env });
    const getPeak = new PeakWatcher(getter.proc.pid!);
    const timer = setTimeout(() => getter!.proc.kill('SIGKILL'), 600_000);
    const { code } = await getter.exited;
    clearTimeout(timer);
    const seconds = (performance.now() - t0) / 1000;
    const requester = await getPeak.finish(hwmDir);
    await owner.stop();
    const ownerBytes = await ownerPeak.finish(hwmDir);
    if (code !== 0) {
      const line = getter.stderr.trim().split('\n').pop() ?? `exit ${code}`;
      if (/not available in this build/.test(line)) return { via, outcome: 'n/a (UDP transport not built)', failed: false };
      return { via, owner: ownerBytes, ownerIndexing, requester, seconds, outcome: `get failed: ${line}`, failed: true };
    }
    const over = Math.max(ownerBytes, requester) >= LIMIT_BYTES;
    return { via, owner: ownerBytes, ownerIndexing, requester, seconds, outcome: over ? 'OVER 200 MB' : 'ok (byte-exact: get verified SHA-256)', failed: over };
  } finally {
    getter?.proc.kill('SIGKILL');
    await owner.stop();
    await rm(downloads, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { dir, cleanup } = await tempDir('p2pshare-memory-');
  const reg = await registry({ ttl: 3600 });
  const results: Result[] = [];
  try {
    const share = join(dir, 'share');
    const hwmDir = join(dir, 'hwm');
    await mkdir(share, { recursive: true });
    await mkdir(hwmDir, { recursive: true });
    // Sparse: no disk space for the source; the requester still writes every byte for real.
    const fh = await open(join(share, 'big.bin'), 'w');
    await fh.truncate(FILE_BYTES);
    await fh.close();
    const preload = join(dir, 'hwm-preload.cjs');
    await writeFile(preload, PRELOAD);
    const env = { NODE_OPTIONS: `--require ${preload}`, BENCH_HWM_DIR: hwmDir };
    for (const via of ['tcp', 'udp'] as const) {
      process.stderr.write(`# moving ${FILE_BYTES / 1024 ** 3} GiB over ${via}...\n`);
      results.push(await measure(via, reg.url, join(share, 'big.bin'), dir, hwmDir, env));
    }
  } finally {
    await reg.close();
    await cleanup();
  }
  const mb = (b?: number) => (b === undefined ? '—' : `${(b / 1e6).toFixed(1)} MB`);
  console.log(`\n${machineLine()}\n${revisionLine()}\n`);
  console.log(`Peak resident memory (VmHWM) moving a ${FILE_BYTES / 1024 ** 3} GiB file, limit ${LIMIT_BYTES / 1e6} MB per process\n`);
  console.log(
    markdownTable(
      ['transport', 'owner peer peak', 'owner peak once ready (before the get)', 'requester (get) peak', 'get seconds', 'result'],
      results.map((r) => [r.via, mb(r.owner), mb(r.ownerIndexing), mb(r.requester), r.seconds === undefined ? '—' : r.seconds.toFixed(1), r.outcome]),
      [1, 2, 3, 4],
    ),
  );
  process.exitCode = results.some((r) => r.failed) ? 1 : 0;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
