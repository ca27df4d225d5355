// Requests per second for GET /v1/peers/{name}: the registry on its memory store, on its Redis
// store, and a bare node:http server answering the same JSON, side by side in one run.
// Each server runs in its own process; autocannon drives it from this one.
//   node build.mjs && node --import tsx bench/registry.ts   (BENCH_SECONDS=5 BENCH_CONNECTIONS=50 BENCH_ROUNDS=3)
// BENCH_COMPARE_CLI=/path/to/other/dist/p2pshare.cjs[,...] adds each such build's registry (memory
// and Redis stores) as rows of the same rotation: how revisions compare, measured side by side.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { PrivateKey } from '../src/core/x25519';
import { RegistryClient } from '../src/registry/client';
import { startCli, startProcess, TEST_CONFIG_HOME, type RunningCli } from '../test/support/cli';
import { redisServerAvailable, startRedis, type TestRedis } from '../test/support/redis';
import { loadLine, median } from './util';

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
}
const autocannon = createRequire(__filename)('autocannon') as (opts: Record<string, unknown>) => Promise<AutocannonResult>;

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
// Rows are measured in rotation, ROUNDS times, and the median round is reported: on a shared
// machine this keeps a burst of outside load from landing on one row only.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const BARE_SERVER = `
const http = require('node:http');
const body = JSON.stringify(${'${BODY}'});
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/v1/peers/bench') {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(body);
  } else { res.writeHead(404); res.end(); }
});
server.listen(0, '127.0.0.1', () => console.log('bare listening on http://127.0.0.1:' + server.address().port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

async function startBare(body: unknown): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['-e', BARE_SERVER.replace('${BODY}', JSON.stringify(body))], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bare server did not start')), 10_000);
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const m = /(http:\/\/\S+)/.exec(d);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { url, proc };
}

async function startRegistryProcess(extra: string[], cliPath?: string): Promise<{ url: string; cli: RunningCli }> {
  const args = ['serve-registry', '--host', '127.0.0.1', '--port', '0', '--stun-port', '0', '--ttl', '86400', ...extra];
  const cli = cliPath
    ? startProcess(process.execPath, [cliPath, ...args], { env: { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: TEST_CONFIG_HOME } })
    : startCli(args);
  const m = await cli.waitForLine(/registry listening on (http:\/\/\S+)/);
  return { url: m[1]!, cli };
}

async function register(url: string): Promise<unknown> {
  await new RegistryClient(url).register({ name: 'bench', port: 4000, addresses: ['10.0.0.7'] }, PrivateKey.generate()).catch(async (err: Error) => {
    // A build from before proofs of key possession has no /v1/challenge: a plain registration.
    const res = await fetch(`${url}/v1/peers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bench', port: 4000, addresses: ['10.0.0.7'] }) });
    if (res.status !== 201) throw err;
  });
  return (await fetch(`${url}/v1/peers/bench`)).json();
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
const CLOCK_TICKS = 100;

type Run = AutocannonResult & { cpuUsPerRequest: number };

/**
 * One row's run, with the server process's CPU time per answered request: on a shared machine
 * the req/s of a row depends on what else runs, its CPU per request much less.
 */
async function measure(url: string, pid: number | undefined): Promise<Run> {
  const cpu0 = cpuSeconds(pid);
  const r = await autocannon({ url: `${url}/v1/peers/bench`, connections: CONNECTIONS, duration: SECONDS, pipelining: 1 });
  return { ...r, cpuUsPerRequest: ((cpuSeconds(pid) - cpu0) * 1e6) / Math.max(1, r.requests.total) };
}

async function main(): Promise<void> {
  const rows: Array<{ label: string; r: Run; cpu: number }> = [];
  const targets: Array<{ label: string; url: string; pid: number | undefined; runs: Run[] }> = [];
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const memory = await startRegistryProcess([]);
    cleanups.push(() => memory.cli.stop());
    const sample = await register(memory.url);

    let redisRow: { url: string; cli: RunningCli } | undefined;
    const compare: Array<{ url: string; label: string; pid: number | undefined }> = [];
    const others = (process.env.BENCH_COMPARE_CLI ?? '').split(',').filter(Boolean);
    for (const cliPath of others) {
      const other = await startRegistryProcess([], cliPath);
      cleanups.push(() => other.cli.stop());
      await register(other.url);
      compare.push({ url: other.url, label: `registry, memory store, ${cliPath}`, pid: other.cli.proc.pid });
    }
    if (redisServerAvailable()) {
      // One Redis per registry: each row's store holds its own single 'bench'.
      for (const cliPath of [undefined, ...others]) {
        const redis: TestRedis = await startRedis();
        cleanups.push(() => redis.close());
        const viaRedis = await startRegistryProcess(['--redis', redis.url], cliPath);
        cleanups.push(() => viaRedis.cli.stop());
        await register(viaRedis.url);
        if (cliPath) compare.push({ url: viaRedis.url, label: `registry, redis store, ${cliPath}`, pid: viaRedis.cli.proc.pid });
        else redisRow = viaRedis;
      }
    }
    const bare = await startBare(sample);
    cleanups.push(async () => bare.proc.kill('SIGTERM'));

    // Short warm-up of each, then the measured runs one after another.
    for (const url of [bare.url, memory.url, ...(redisRow ? [redisRow.url] : []), ...compare.map((c) => c.url)]) {
      await autocannon({ url: `${url}/v1/peers/bench`, connections: 10, duration: 1 });
    }
    targets.push({ label: 'bare node:http (same JSON)', url: bare.url, pid: bare.proc.pid, runs: [] });
    targets.push({ label: 'registry, memory store', url: memory.url, pid: memory.cli.proc.pid, runs: [] });
    if (redisRow) targets.push({ label: 'registry, redis store', url: redisRow.url, pid: redisRow.cli.proc.pid, runs: [] });
    for (const c of compare) targets.push({ label: c.label, url: c.url, pid: c.pid, runs: [] });
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of targets) t.runs.push(await measure(t.url, t.pid));
    }
    for (const t of targets) {
      const sorted = [...t.runs].sort((x, y) => x.requests.average - y.requests.average);
      rows.push({ label: t.label, r: sorted[Math.floor(sorted.length / 2)]!, cpu: median(t.runs.map((r) => r.cpuUsPerRequest)) });
    }
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }

  const base = rows[0]!.r.requests.average;
  const baseCpu = rows[0]!.cpu;
  console.log(`\nGET /v1/peers/{name}: ${CONNECTIONS} connections, ${SECONDS} s per row, median of ${ROUNDS} rotating rounds, node ${process.version}, load average at end ${loadLine()}`);
  console.log('server CPU = user + system time of the server process (not Redis) per answered request, median of the rounds; vs bare = bare CPU / this CPU (what req/s would be with a CPU to itself)\n');
  console.log('| server | req/s | p50 ms | p99 ms | vs bare | server CPU µs/req | vs bare by CPU | non-2xx | errors |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const { label, r, cpu } of rows) {
    console.log(`| ${label} | ${Math.round(r.requests.average)} | ${r.latency.p50} | ${r.latency.p99} | ${(r.requests.average / base).toFixed(2)} | ${cpu.toFixed(0)} | ${(baseCpu / cpu).toFixed(2)} | ${r.non2xx} | ${r.errors} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
