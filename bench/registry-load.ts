// Load generator for the registry at scale: N simulated peers register, then heartbeat at the
// rate real peers do (every ttl/3 s, at the phase each registered at), while lookups and list
// pages run at a fixed rate, against M registry processes on one Redis and on a Redis Cluster of
// 3 masters started here. Every limit stays at its default: the peers come from N/50 loopback
// source addresses (at most 64 live names and 60 registrations a minute each), one connection
// per request as the peers' own client does. At most LOAD_IN_FLIGHT heartbeats are in flight:
// when the registries (or this generator, on the same cores) cannot keep up, beats wait, and one
// still waiting when its peer's next comes due is skipped and counted, so memory stays bounded
// and the shortfall is a reported number. Reports req/s, p50/p99 per route, skipped heartbeats
// and the generator's lag, the CPU each side used, Redis commands/s and Redis memory per live peer.
//   node build.mjs && node --import tsx bench/registry-load.ts
//   LOAD_PEERS=5000 LOAD_REGISTRIES=3 LOAD_SECONDS=30 LOAD_TTL=30 LOAD_LOOKUPS=200 LOAD_LISTS=5 LOAD_MODES=bare,redis,cluster
//   LOAD_IN_FLIGHT=1024 LOAD_REGISTER_IN_FLIGHT=64 LOAD_PROFILE_DIR=/tmp/prof (registries under --cpu-prof)
//   LOAD_CLI=other/dist/p2pshare.cjs (the registries' build)
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PrivateKey } from '../src/core/x25519';
import { CLI, startProcess, TEST_CONFIG_HOME, type RunningProcess } from '../test/support/cli';
import { startRedis } from '../test/support/redis';
import { startCluster } from '../test/registry/cluster';
import { registerFrom, sourceAddress, type Answer } from '../test/registry/http-from';
import { BeatWheel, TICK_MS } from './beat-wheel';
import { procCpu, runQueueWait } from './cpu';
import { rawRequest } from './load-http';
import { loadLine, machineLine, markdownTable, revisionLine } from './util';

const N = Number(process.env.LOAD_PEERS ?? 5000);
const M = Number(process.env.LOAD_REGISTRIES ?? 3);

const TTL = Number(process.env.LOAD_TTL ?? 30);
/** The measured window: at least one heartbeat period, so that every peer beats in it (a shorter
 *  one after registrations that took longer than a period offers less than N/period). */
const SECONDS = Number(process.env.LOAD_SECONDS ?? Math.max(30, TTL / 3));
const LOOKUPS = Number(process.env.LOAD_LOOKUPS ?? 200);
const LISTS = Number(process.env.LOAD_LISTS ?? 5);
/** bare: bench/bare-registry.cjs in the registries' place, the floor of one connection per request. */
const MODES = (process.env.LOAD_MODES ?? 'bare,redis,cluster').split(',');
/** Heartbeats in flight at most: past it the generator falls behind, and says so (skipped, lag). */
const IN_FLIGHT = Number(process.env.LOAD_IN_FLIGHT ?? 1024);
const REGISTER_IN_FLIGHT = Number(process.env.LOAD_REGISTER_IN_FLIGHT ?? 64);
/** Lookups and list pages in flight at most, apart from the heartbeats. */
const OTHERS_IN_FLIGHT = 16;
const NAMES_PER_ADDRESS = 50;
/** Where the registries write a CPU profile each (node --cpu-prof), when set. */
const PROFILE_DIR = process.env.LOAD_PROFILE_DIR;
/** The build the registries run (another build, to compare two side by side). */
const REGISTRY_CLI = process.env.LOAD_CLI ?? CLI;

type Route = 'register' | 'heartbeat' | 'lookup' | 'list';
const ROUTES: Route[] = ['register', 'heartbeat', 'lookup', 'list'];

class Stats {
  readonly ms = new Map<Route, number[]>(ROUTES.map((r) => [r, []]));
  readonly failed = new Map<string, number>();
  add(route: Route, ms: number): void {
    this.ms.get(route)!.push(ms);
  }
  fail(route: Route, why: string | number): void {
    const k = `${route} ${why}`;
    this.failed.set(k, (this.failed.get(k) ?? 0) + 1);
  }
}

function pct(xs: number[], p: number): string {
  if (xs.length === 0) return '-';
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!.toFixed(1);
}

interface RedisSide {
  label: string;
  /** null: the bare server instead of registries (bench/bare-registry.cjs). */
  url: string | null;
  /** Ports of the masters (one for a single Redis). */
  masters: number[];
  close(): Promise<void>;
}

function info(port: number, section: string): Record<string, string> {
  const text = spawnSync('redis-cli', ['-p', String(port), 'info', section], { encoding: 'utf8' }).stdout;
  return Object.fromEntries(text.split('\n').map((l) => l.trim().split(':')).filter((kv) => kv.length === 2) as Array<[string, string]>);
}
const sumInfo = (ports: number[], section: string, field: string) => ports.reduce((s, p) => s + Number(info(p, section)[field] ?? 0), 0);

/** Every registry running, so that an error or a signal that ends the bench still stops them. */
const children = new Set<RunningProcess>();
process.on('exit', () => children.forEach((c) => c.proc.kill('SIGKILL')));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

const BARE = join(__dirname, 'bare-registry.cjs');

async function startRegistries(url: string | null): Promise<{ urls: URL[]; procs: RunningProcess[] }> {
  const procs: RunningProcess[] = [];
  const urls: URL[] = [];
  for (let i = 0; i < M; i++) {
    const profile = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : [];
    const args = url === null ? [BARE] : [REGISTRY_CLI, 'serve-registry', '--host', '127.0.0.1', '--port', '0', '--stun-port', '0', '--ttl', String(TTL), '--redis', url];
    const p = startProcess(process.execPath, [...profile, ...args], {
      env: { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: TEST_CONFIG_HOME },
    });
    procs.push(p);
    children.add(p);
    void p.exited.then(() => children.delete(p));
    urls.push(new URL((await p.waitForLine(/registry listening on (http:\/\/\S+)/, 30_000))[1]!));
  }
  return { urls, procs };
}

/** CPU seconds used so far by the registries, Redis (all masters) and this generator. */
function cpuNow(procs: RunningProcess[], side: RedisSide): { registries: number; redis: number; generator: number } {
  const u = process.cpuUsage();
  return {
    registries: procs.reduce((s, p) => s + (p.proc.pid === undefined ? NaN : (procCpu(p.proc.pid)?.self ?? NaN)), 0),
    redis: side.masters.reduce((s, port) => {
      const c = info(port, 'cpu');
      return s + Number(c.used_cpu_user ?? NaN) + Number(c.used_cpu_sys ?? NaN);
    }, 0),
    generator: (u.user + u.system) / 1e6,
  };
}

/** Seconds the main threads of the registries, the Redis masters and this generator have waited for a CPU. */
function waitNow(procs: RunningProcess[], side: RedisSide): { registries: number; redis: number; generator: number } {
  const sum = (pids: Array<number | undefined>) => pids.reduce<number>((s, pid) => s + (pid === undefined ? NaN : (runQueueWait(pid) ?? NaN)), 0);
  return {
    registries: sum(procs.map((p) => p.proc.pid)),
    redis: sum(side.masters.map((port) => Number(info(port, 'server').process_id))),
    generator: sum([process.pid]),
  };
}

/** Requests in flight, capped; completion frees a place and calls `onFree`. */
class Flight {
  busy = 0;
  constructor(readonly cap: number, private readonly onFree: () => void) {}
  get full(): boolean {
    return this.busy >= this.cap;
  }
  start(route: Route, stats: () => Stats, f: () => Promise<Answer>, ok: number): void {
    this.busy++;
    const counted = stats();
    f().then(
      (a) => (a.status === ok ? counted.add(route, a.ms) : counted.fail(route, a.status)),
      (e: Error) => counted.fail(route, e.message),
    ).finally(() => {
      this.busy--;
      this.onFree();
    });
  }
  async drain(ms: number): Promise<void> {
    const until = performance.now() + ms;
    while (this.busy > 0 && performance.now() < until) await sleep(20);
  }
}

async function run(side: RedisSide): Promise<string[][]> {
  const { urls, procs } = await startRegistries(side.url);
  const stats = new Stats();
  try {
    const memBefore = sumInfo(side.masters, 'memory', 'used_memory');
    const identity = PrivateKey.generate();
    const tokens: string[] = new Array(N);
    const t0 = performance.now();
    const at = () => performance.now() - t0;
    // Heartbeats start with the registrations (a peer's first one ttl/3 after it registered) and
    // have their own places in flight, so they never queue behind registrations; what happens
    // before the steady state is counted apart.
    const wheel = new BeatWheel(N, (TTL * 1000) / 3);
    let window = new Stats();
    const lag: number[] = [];
    const beats: Flight = new Flight(IN_FLIGHT, () => pumpBeats());
    const pumpBeats = () => {
      wheel.advance(at());
      for (let due; !beats.full && (due = wheel.next(at())); ) {
        const i = due.peer;
        lag.push(due.lagMs);
        beats.start('heartbeat', () => window, () => rawRequest(urls[i % M]!, 'POST', `/v1/peers/peer${i}/heartbeat`, sourceAddress(Math.floor(i / NAMES_PER_ADDRESS)), { token: tokens[i]! }), 200);
      }
    };
    let registering = true;
    const ticker = (async () => {
      while (registering) {
        pumpBeats();
        await sleep(TICK_MS);
      }
    })();
    // Registration: many addresses at once, each registering its names; workers take the next peer.
    let nextPeer = 0;
    const register = async () => {
      for (let i; (i = nextPeer++) < N; ) {
        const from = sourceAddress(Math.floor(i / NAMES_PER_ADDRESS));
        const r = await registerFrom(urls[i % M]!.href, from, identity, { name: `peer${i}`, port: 4000 }, rawRequest).catch((e: Error) => ({ status: e.message, body: '', ms: 0 }));
        if ('token' in r) {
          tokens[i] = r.token;
          wheel.add(i, at());
          stats.add('register', r.ms);
        } else stats.fail('register', r.status);
        if (i % 10_000 === 9_999) console.log(`  ${i + 1} registered in ${(at() / 1000).toFixed(0)} s, heartbeats waiting ${wheel.backlog}, skipped ${wheel.skipped}`);
      }
    };
    await Promise.all(Array.from({ length: REGISTER_IN_FLIGHT }, register));
    registering = false;
    await ticker;
    const registerSeconds = at() / 1000;
    const live = tokens.flatMap((t, i) => (t ? [i] : []));
    const liveAfter = live.length;
    const memAfter = sumInfo(side.masters, 'memory', 'used_memory');
    const before = window;
    const skippedWhileRegistering = wheel.skipped;

    // Steady state: heartbeats at the real rate, lookups and list pages at fixed rates with places
    // of their own (one that finds none is counted as not sent, and the rate says so).
    window = new Stats();
    wheel.resetCounts();
    lag.length = 0; // the generator's lag in the steady state only
    const others = new Flight(OTHERS_IN_FLIGHT, () => {});
    const sent = { lookup: 0, list: 0, notSent: 0 };
    const cmd0 = sumInfo(side.masters, 'stats', 'total_commands_processed');
    const cpu0 = cpuNow(procs, side);
    const wait0 = waitNow(procs, side);
    const start = performance.now();
    let cursor: string | null = null;
    let lookupsDue = 0;
    let listsDue = 0;
    while (performance.now() - start < SECONDS * 1000) {
      pumpBeats();
      lookupsDue += LOOKUPS / (1000 / TICK_MS);
      for (; lookupsDue >= 1 && live.length > 0; lookupsDue--) {
        if (others.full) {
          sent.notSent++;
          continue;
        }
        const i = live[Math.floor(Math.random() * live.length)]!;
        sent.lookup++;
        others.start('lookup', () => window, () => rawRequest(urls[sent.lookup % M]!, 'GET', `/v1/peers/peer${i}`, '127.0.0.1'), 200);
      }
      listsDue += LISTS / (1000 / TICK_MS);
      for (; listsDue >= 1; listsDue--) {
        if (others.full) {
          sent.notSent++;
          continue;
        }
        sent.list++;
        const q: string = `/v1/peers?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        others.start('list', () => window, async () => {
          const a = await rawRequest(urls[sent.list % M]!, 'GET', q, '127.0.0.1');
          if (a.status === 200) cursor = (JSON.parse(a.body) as { next: string | null }).next;
          return a;
        }, 200);
      }
      await sleep(TICK_MS);
    }
    const elapsed = (performance.now() - start) / 1000;
    const cpu1 = cpuNow(procs, side);
    const wait1 = waitNow(procs, side);
    const cmds = sumInfo(side.masters, 'stats', 'total_commands_processed') - cmd0;
    const memEnd = sumInfo(side.masters, 'memory', 'used_memory');
    const offered = wheel.offered;
    const skipped = wheel.skipped;
    const backlog = wheel.backlog;
    // Answers still arriving after the window are counted apart.
    const steady = window;
    const steadyLag = lag.slice();
    window = new Stats();
    await Promise.all([beats.drain(15_000), others.drain(15_000)]);
    const perSecond = (st: Stats, r: Route, seconds: number) => (st.ms.get(r)!.length / seconds).toFixed(0);
    const failures = [...stats.failed, ...steady.failed].map(([k, v]) => `${k}: ${v}`).join('; ') || 'none';
    const early = [...before.failed].map(([k, v]) => `${k}: ${v}`).join('; ') || 'none';
    // Right after registering, the used-challenge markers (one per registration, for 60 s) count too.
    const memPerPeer = liveAfter ? (memAfter - memBefore) / liveAfter : NaN;
    const memPerPeerEnd = liveAfter ? (memEnd - memBefore) / liveAfter : NaN;
    // Per answered request: the registries against the bare server is the registry's own cost.
    const answered = Math.max(1, ROUTES.slice(1).reduce((n, r) => n + steady.ms.get(r)!.length, 0));
    // Seconds each party spent in the window, as a rate (`unit` per second) and per answered request.
    type Party = keyof typeof cpu0;
    const parties = (Object.keys(cpu0) as Party[]).filter((k) => k !== 'redis' || side.masters.length > 0);
    const perParty = (s0: Record<Party, number>, s1: Record<Party, number>, scale: number, unit: string) =>
      parties.map((k) => `${k} ${((scale * (s1[k] - s0[k])) / elapsed).toFixed(0)} ${unit} (${(((s1[k] - s0[k]) * 1e6) / answered).toFixed(0)} µs per answered request)`).join(', ');
    const cpuLine = perParty(cpu0, cpu1, 100, '%');
    // Time runnable but not running: on 2 cores shared by all of them, latency no CPU profile shows.
    const waitLine = perParty(wait0, wait1, 1000, 'ms/s');
    const redisLine = side.masters.length === 0 ? '' :
      `  Redis ${(cmds / elapsed).toFixed(0)} commands/s (INFO total_commands_processed, commands run by scripts included), ` +
      `used_memory per live peer ${memPerPeer.toFixed(0)} B after registering, ${memPerPeerEnd.toFixed(0)} B at the end (both with the used-challenge markers of the last 60 s)\n`;
    console.log(`\n${side.label}: ${liveAfter}/${N} peers registered in ${registerSeconds.toFixed(1)} s (${(liveAfter / registerSeconds).toFixed(0)}/s); steady state ${elapsed.toFixed(1)} s\n` +
      `  heartbeats: ${offered} came due, ${skipped} skipped (still waiting for a place when the next came due), ${backlog} waiting at the end; generator lag p50 ${pct(steadyLag, 50)} ms, p99 ${pct(steadyLag, 99)} ms; ${skippedWhileRegistering} skipped while registering\n` +
      `  lookups and list pages not sent for want of a place: ${sent.notSent}\n` +
      `  CPU in the steady state (100 % = one core of ${cpus().length}): ${cpuLine}\n` +
      `  waiting for a CPU in the steady state (main threads, /proc/PID/schedstat, summed over the processes): ${waitLine}\n` +
      redisLine +
      `  failures: ${failures}; heartbeats failed while registering: ${early}; answered after the window: ${ROUTES.slice(1).map((r) => window.ms.get(r)!.length).join('/')}`);
    const row = (r: Route, offeredRate: string) => {
      const st = r === 'register' ? stats : steady;
      return [side.label, r, offeredRate, perSecond(st, r, r === 'register' ? registerSeconds : elapsed), pct(st.ms.get(r)!, 50), pct(st.ms.get(r)!, 99)];
    };
    return [
      row('register', '-'),
      row('heartbeat', (offered / elapsed).toFixed(0)),
      row('lookup', (sent.lookup / elapsed).toFixed(0)),
      row('list', (sent.list / elapsed).toFixed(0)),
      ...(side.masters.length ? [[side.label, 'redis', `${(cmds / elapsed).toFixed(0)} cmd/s`, `${memPerPeer.toFixed(0)} / ${memPerPeerEnd.toFixed(0)} B/peer`, '', '']] : []),
    ];
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGINT')));
    // What the registries refused or reset, in their own words (their summed event lines).
    const said = procs.flatMap((p) => p.stderr.split('\n')).filter((l) => /^registry: /.test(l));
    if (said.length) console.log(`registry logs (${said.length} lines), first ones:\n  ${said.slice(0, 6).join('\n  ')}`);
  }
}

async function main(): Promise<void> {
  console.log(machineLine());
  console.log(revisionLine());
  console.log(`load average at start ${loadLine()}`);
  if (SECONDS < TTL / 3) console.log(`note: the ${SECONDS} s window is shorter than a heartbeat period (${TTL / 3} s): the heartbeat rate offered depends on when the peers registered`);
  console.log(`${N} peers, ${M} registry processes, ttl ${TTL} s (a heartbeat every ${(TTL / 3).toFixed(1)} s: ${(N / (TTL / 3)).toFixed(0)}/s), ${LOOKUPS} lookups/s, ${LISTS} list pages/s of 100, ${SECONDS} s, at most ${IN_FLIGHT} requests in flight`);
  const rows: string[][] = [];
  for (const mode of MODES) {
    let side: RedisSide;
    if (mode === 'bare') {
      side = { label: 'bare node:http', url: null, masters: [], close: async () => {} };
    } else if (mode === 'cluster') {
      const c = await startCluster({ masters: 3, replicas: 0, nodeTimeoutMs: 5000 });
      side = { label: 'cluster, 3 masters', url: c.url, masters: c.ports, close: () => c.close() };
    } else {
      const r = await startRedis();
      side = { label: 'one Redis', url: r.url, masters: [r.port], close: () => r.close() };
    }
    try {
      rows.push(...(await run(side)));
    } finally {
      await side.close();
    }
  }
  console.log(`\nload average at end ${loadLine()}\n`);
  console.log(markdownTable(['store', 'route', 'offered /s', 'done /s', 'p50 ms', 'p99 ms'], rows, [2, 3, 4, 5]));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
