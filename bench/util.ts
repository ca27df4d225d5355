// Small helpers shared by the transfer benchmarks: the machine line, medians, formatting,
// timing a child process from spawn to exit, and files to move.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { performance } from 'node:perf_hooks';

export const MiB = 1024 * 1024;

export function machineLine(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  let distro = '';
  try {
    distro = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux, or no os-release: the kernel release alone will do
  }
  return `machine: ${cpu}, ${cpus().length} cores, node ${process.version}, kernel ${release()}${distro ? `, ${distro}` : ''}`;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function mibPerSecond(bytes: number, seconds: number): number {
  return bytes / MiB / seconds;
}

export function fmtRate(mibps: number): string {
  return `${mibps.toFixed(mibps < 10 ? 2 : 1)} MiB/s`;
}

export interface ProcessRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs `node args...` and measures from spawn to exit; SIGKILLs it after timeoutMs. */
export function timeNode(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<ProcessRun> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, args, { cwd: opts.cwd, env: opts.env ?? { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGKILL');
  }, opts.timeoutMs ?? 120_000);
  return new Promise((resolve) => {
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, seconds: (performance.now() - t0) / 1000, stdout, stderr, timedOut });
    });
  });
}

/** The last non-empty stderr line of a failed run: what the user would have read. */
export function failureLine(r: ProcessRun): string {
  if (r.timedOut) return 'timed out';
  const lines = r.stderr.trim().split('\n').filter(Boolean);
  return lines[lines.length - 1] ?? `exit ${r.code ?? r.signal}`;
}

/** Markdown table with right-aligned numeric columns. */
export function markdownTable(header: string[], rows: string[][], rightAligned: number[]): string {
  const sep = header.map((_, i) => (rightAligned.includes(i) ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** The 1/5/15-minute load averages: on a shared machine, how busy it was around a measurement. */
export function loadLine(): string {
  return loadavg().map((l) => l.toFixed(2)).join(' / ');
}

/** Which code was measured: the commit, and whether src/ had uncommitted changes (shared tree). */
export function revisionLine(): string {
  try {
    const git = (args: string[]) => execFileSync('git', args, { cwd: __dirname, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git(['status', '--porcelain', '--', '../src']).split('\n').filter(Boolean).length;
    return `code: commit ${git(['rev-parse', '--short', 'HEAD'])}${dirty ? ` plus ${dirty} uncommitted file(s) in src/` : ''}`;
  } catch {
    return 'code: (not a git checkout)';
  }
}
