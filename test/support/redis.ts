// A real redis-server for tests: on a free port, in a temp folder, that a test can kill and restart.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { tempDir } from './cli';

/**
 * True when redis-server is installed. When it is missing: throws under CI=true (the Redis tests
 * must really run there), else warns loudly so a local skip is never silent.
 */
export function redisServerAvailable(): boolean {
  const res = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (res.status === 0) return true;
  if (process.env.CI === 'true') throw new Error('redis-server is not installed, and CI=true requires the Redis tests to run');
  console.warn('\n*** SKIPPING Redis tests: redis-server is not installed (they are required in CI) ***\n');
  return false;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Sends PING on a fresh connection; true on +PONG within timeoutMs. */
export function pingRedis(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => done(d.toString().startsWith('+PONG')));
    sock.on('error', () => done(false));
  });
}

export interface TestRedis {
  port: number;
  url: string;
  /** SIGKILLs the server and waits until it is really gone (PING fails). */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that still holds its connections but answers nothing. */
  freeze(): void;
  thaw(): void;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

/** Starts redis-server on `port` (default: a free one). */
export async function startRedis(opts: { port?: number } = {}): Promise<TestRedis> {
  const { dir, cleanup } = await tempDir('p2pshare-redis-');
  let port = opts.port ?? (await freePort());
  let proc: ChildProcess | null = null;
  let log = '';

  async function launch(): Promise<void> {
    log = '';
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.on('data', (d) => (log = (log + d).slice(-4000)));
    proc.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (await pingRedis(port, 500)) return;
      if (proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not start on port ${port}:\n${log}`);
  }

  async function kill(): Promise<void> {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
    proc = null;
  }

  // Also when the process ends without close() (a bench's fatal error, a runner's signal).
  const killOnExit = () => void proc?.kill('SIGKILL');
  process.once('exit', killOnExit);
  // A free port found by freePort() may be taken again before redis-server binds it (other tests
  // run beside this one): then another is tried, unless the caller asked for this port.
  for (let attempt = 0; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      await kill();
      if (opts.port !== undefined || attempt >= 5 || !/Address already in use/i.test(log)) {
        process.off('exit', killOnExit);
        await cleanup();
        throw err;
      }
      port = await freePort();
    }
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: launch,
    freeze: () => void proc?.kill('SIGSTOP'),
    thaw: () => void proc?.kill('SIGCONT'),
    async close() {
      process.off('exit', killOnExit);
      await kill();
      await cleanup();
    },
  };
}
