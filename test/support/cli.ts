// Runs the built CLI (dist/p2pshare.cjs, made by `npm test` before the tests) as a real process.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const CLI = resolve(__dirname, '../../dist/p2pshare.cjs');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/**
 * The XDG_CONFIG_HOME of every CLI this test file starts (unless a test passes its own): one
 * identity and one known_peers per test file, never the user's, removed when the file's tests end.
 */
export const TEST_CONFIG_HOME = mkdtempSync(join(tmpdir(), 'p2pshare-config-'));
process.once('exit', () => rmSync(TEST_CONFIG_HOME, { recursive: true, force: true }));

function cliEnv(extra?: Record<string, string | undefined>): NodeJS.ProcessEnv {
  // No colour and no progress in tests unless a test asks for them.
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', P2PSHARE_REGISTRY: undefined, P2PSHARE_REDIS_URL: undefined, XDG_CONFIG_HOME: TEST_CONFIG_HOME };
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return env;
}

/** Runs `p2pshare ...args` to completion; kills it (and fails loudly) after timeoutMs. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<RunResult> {
  return runProcess(process.execPath, [CLI, ...args], { ...opts, env: cliEnv(opts.env), label: `p2pshare ${args.join(' ')}` });
}

export interface ProcessOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Written to the process's standard input, which is then closed (default: no standard input). */
  input?: string;
  /** How errors name the process (default: the command line). */
  label?: string;
}

/** Runs `command ...args` to completion; kills it (and fails loudly) after timeoutMs (default 60 s). */
export function runProcess(command: string, args: string[], opts: ProcessOptions = {}): Promise<RunResult> {
  const label = opts.label ?? [command, ...args].join(' ');
  const proc = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  if (opts.input !== undefined) proc.stdin!.end(opts.input);
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
  proc.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${label} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
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

/** A long-running process (a p2pshare command, or anything startProcess started). */
export interface RunningProcess {
  proc: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves with the first stdout line matching `re` (and its match), rejects after timeoutMs. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` and resolves with the exit code (SIGKILL after 10 s). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export type RunningCli = RunningProcess;

/** Starts a long-running `p2pshare ...args` (serve-registry, peer). */
export function startCli(args: string[], opts: CliOptions = {}): RunningCli {
  return startProcess(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: cliEnv(opts.env), label: `p2pshare ${args.join(' ')}` });
}

/** Starts `command ...args` with its output captured; `stdin: 'pipe'` leaves proc.stdin open. */
export function startProcess(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; label?: string; stdin?: 'ignore' | 'pipe' } = {},
): RunningProcess {
  const label = opts.label ?? [command, ...args].join(' ');
  const proc = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  proc.stdout!.setEncoding('utf8').on('data', (d) => {
    stdout += d;
    waiters.forEach((w) => w());
  });
  proc.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    proc.on('close', (code, signal) => {
      res({ code, signal });
      waiters.forEach((w) => w());
    }),
  );
  return {
    proc,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    waitForLine(re, timeoutMs = 15_000) {
      return new Promise((resolvePromise, reject) => {
        const check = () => {
          for (const line of stdout.split('\n')) {
            const m = line.match(re);
            if (m) {
              clearTimeout(timer);
              waiters.splice(waiters.indexOf(check) >>> 0, 1);
              resolvePromise(m);
              return;
            }
          }
          if (proc.exitCode !== null || proc.signalCode !== null) {
            clearTimeout(timer);
            reject(new Error(`${label} exited (${proc.exitCode ?? proc.signalCode}) before printing ${re}\nstdout: ${stdout}\nstderr: ${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          reject(new Error(`${label} did not print ${re} within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
        }, timeoutMs);
        waiters.push(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const { code } = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** A fresh temporary folder, removed by the returned cleanup. */
export async function tempDir(prefix = 'p2pshare-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Starts `node --import tsx FILE ...args` (a test's helper process) and resolves once a stdout
 * line matches `ready`. A child whose TypeScript loading stalls prints nothing at all, not even an
 * error (seen a few times in CI; test/run.mjs notes the same stall for a test file): a child still
 * silent after `timeoutMs` is killed and started once more. One that printed anything, or a second
 * silent one, fails as waitForLine does.
 */
export async function startTsChild(file: string, args: string[], ready: RegExp, timeoutMs: number): Promise<RunningProcess> {
  for (let attempt = 1; ; attempt++) {
    const child = startProcess(process.execPath, ['--import', 'tsx', file, ...args]);
    try {
      await child.waitForLine(ready, timeoutMs);
      return child;
    } catch (err) {
      const silent = child.stdout === '' && child.stderr === '';
      await child.stop('SIGKILL');
      if (!silent || attempt >= 2) throw err;
      console.log(`# ${file} printed nothing in ${timeoutMs} ms (its TypeScript loading stalled); started again`);
    }
  }
}

