// Load generator for the registry at scale: N simulated peers register, then heartbeat at the
// rate real peers do (every ttl/3 s, random phase), while lookups and list pages run at a fixed
// rate, against M registry processes on one Redis and on a Redis Cluster of 3 masters started
// here. Every limit stays at its default: the peers come from N/50 loopback source addresses
// (at most 64 live names and 60 registrations a minute each), one connection per request as
// the peers' own client does. Reports req/s, p50/p99 per route, Redis commands/s and Redis memory
// per live peer.
//   node build.mjs && node --import tsx bench/registry-load.ts
//   LOAD_PEERS=5000 LOAD_REGISTRIES=3 LOAD_SECONDS=30 LOAD_TTL=30 LOAD_LOOKUPS=200 LOAD_LISTS=5 LOAD_MODES=redis,cluster
import { spawnSync } from 'node:child_process';
import { PrivateKey } from '../src/core/x25519';
import { CLI, startProcess, TEST_CONFIG_HOME, type RunningProcess } from '../test/support/cli';
import { startRedis } from '../test/support/redis';
import { startCluster } from '../test/registry/cluster';
import { registerFrom, request, sourceAddress } from '../test/registry/http-from';
import { loadLine, machineLine, markdownTable, revisionLine } from './util';

const N = Number(process.env.LOAD_PEERS ?? 5000);
const M = Number(process.env.LOAD_REGISTRIES ?? 3);
const SECONDS = Number(process.env.LOAD_SECONDS ?? 30);
const TTL = Number(process.env.LOAD_TTL ?? 30);
const LOOKUPS = Number(process.env.LOAD_LOOKUPS ?? 200);
const LISTS = Number(process.env.LOAD_LISTS ?? 5);
const MODES = (process.env.LOAD_MODES ?? 'redis,cluster').split(',');
/** Requests in flight at most: past it the generator falls behind, and says so (achieved rate). */
const IN_FLIGHT = Number(process.env.LOAD_IN_FLIGHT ?? 64);
const NAMES_PER_ADDRESS = 50;

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

/** A gate of `n` slots: run() waits for one. */
function limiter(n: number) {
  let busy = 0;
  const waiting: Array<() => void> = [];
  return {
    get busy() {
      return busy;
    },
    async run<T>(f: () => Promise<T>): Promise<T> {
      if (busy >= n) await new Promise<void>((r) => waiting.push(r));
      busy++;
      try {
        return await f();
      } finally {
        busy--;
        waiting.shift()?.();
      }
    },
  };
}

interface RedisSide {
  label: string;
  url: string;
  /** Ports of the masters (one for a single Redis). */
  masters: number[];
  close(): Promise<void>;
}

function info(port: number, section: string): Record<string, string> {
  const text = spawnSync('redis-cli', ['-p', String(port), 'info', section], { encoding: 'utf8' }).stdout;
  return Object.fromEntries(text.split('\n').map((l) => l.trim().split(':')).filter((kv) => kv.length === 2) as Array<[string, string]>);
}
const sumInfo = (ports: number[], section: string, field: string) => ports.reduce((s, p) => s + Number(info(p, section)[field] ?? 0), 0);

async function startRegistries(url: string): Promise<{ urls: string[]; procs: RunningProcess[] }> {
  const procs: RunningProcess[] = [];
  const urls: string[] = [];
  for (let i = 0; i < M; i++) {
    const p = startProcess(process.execPath, [CLI, 'serve-registry', '--host', '127.0.0.1', '--port', '0', '--stun-port', '0', '--ttl', String(TTL), '--redis', url], {
      env: { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: TEST_CONFIG_HOME },
    });
    procs.push(p);
    urls.push((await p.waitForLine(/registry listening on (http:\/\/\S+)/, 30_000))[1]!);
  }
  return { urls, procs };
}

async function run(side: RedisSide): Promise<string[][]> {
  const { urls, procs } = await startRegistries(side.url);
  const stats = new Stats();
  try {
    const memBefore = sumInfo(side.masters, 'memory', 'used_memory');
    // Registration: every address registers its names, many addresses at once.
    const identity = PrivateKey.generate();
    const tokens: string[] = new Array(N);
    const t0 = performance.now();
    const at = () => performance.now() - t0;
    // Heartbeats start with the registrations (a peer's first one ttl/3 after it registered),
    // through a gate of their own so they never queue behind registrations; what happens before
    // the steady state is counted apart.
    const every = (TTL * 1000) / 3;
    const next = new Array<number>(N).fill(Infinity);
    let window = new Stats();
    const beatGate = limiter(IN_FLIGHT);
    const sent = { heartbeat: 0, lookup: 0, list: 0 };
    const pending = new Set<Promise<unknown>>();
    const fire = (route: Route, f: () => Promise<{ status: number; ms: number; body: string }>, ok: number) => {
      const counted = window;
      const p = beatGate.run(f).then(
        (a) => (a.status === ok ? counted.add(route, a.ms) : counted.fail(route, a.status)),
        (e: Error) => counted.fail(route, e.message),
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    };
    const beatDue = () => {
      const now = at();
      for (let i = 0; i < N; i++) {
        if (next[i]! > now) continue;
        next[i]! += every;
        sent.heartbeat++;
        const from = sourceAddress(Math.floor(i / NAMES_PER_ADDRESS));
        fire('heartbeat', () => request(urls[i % M]!, 'POST', `/v1/peers/peer${i}/heartbeat`, from, { token: tokens[i]! }), 200);
      }
    };
    let registering = true;
    const pump = (async () => {
      while (registering) {
        beatDue();
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const regGate = limiter(Math.max(8, IN_FLIGHT / 2));
    await Promise.all(Array.from({ length: N }, (_, i) => regGate.run(async () => {
      const from = sourceAddress(Math.floor(i / NAMES_PER_ADDRESS));
      const r = await registerFrom(urls[i % M]!, from, identity, { name: `peer${i}`, port: 4000 }).catch((e: Error) => ({ status: e.message, body: '', ms: 0 }));
      if ('token' in r) {
        tokens[i] = r.token;
        next[i] = at() + every;
        stats.add('register', r.ms);
      } else stats.fail('register', r.status);
    })));
    registering = false;
    await pump;
    const registerSeconds = at() / 1000;
    const live = tokens.flatMap((t, i) => (t ? [i] : []));
    const liveAfter = live.length;
    const memAfter = sumInfo(side.masters, 'memory', 'used_memory');
    const before = window;

    // Steady state: heartbeats at the real rate, lookups and list pages at fixed rates.
    window = new Stats();
    Object.assign(sent, { heartbeat: 0, lookup: 0, list: 0 });
    const cmd0 = sumInfo(side.masters, 'stats', 'total_commands_processed');
    const start = performance.now();
    let cursor: string | null = null;
    let lookupsDue = 0;
    let listsDue = 0;
    while (performance.now() - start < SECONDS * 1000) {
      beatDue();
      lookupsDue += LOOKUPS / 20;
      for (; lookupsDue >= 1 && live.length > 0; lookupsDue--) {
        const i = live[Math.floor(Math.random() * live.length)]!;
        sent.lookup++;
        fire('lookup', () => request(urls[sent.lookup % M]!, 'GET', `/v1/peers/peer${i}`, '127.0.0.1'), 200);
      }
      listsDue += LISTS / 20;
      for (; listsDue >= 1; listsDue--) {
        sent.list++;
        const q: string = `/v1/peers?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        fire('list', async () => {
          const a = await request(urls[sent.list % M]!, 'GET', q, '127.0.0.1');
          if (a.status === 200) cursor = (JSON.parse(a.body) as { next: string | null }).next;
          return a;
        }, 200);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const elapsed = (performance.now() - start) / 1000;
    const cmds = sumInfo(side.masters, 'stats', 'total_commands_processed') - cmd0;
    const memEnd = sumInfo(side.masters, 'memory', 'used_memory');
    await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, 15_000))]);
    const pick = (r: Route) => (r === 'register' ? stats : window);
    const done = (r: Route) => pick(r).ms.get(r)!.length;
    const failures = [...stats.failed, ...window.failed].map(([k, v]) => `${k}: ${v}`).join('; ') || 'none';
    const early = [...before.failed].map(([k, v]) => `${k}: ${v}`).join('; ') || 'none';
    // Right after registering, the used-challenge markers (one per registration, for 60 s) count too.
    const memPerPeer = liveAfter ? (memAfter - memBefore) / liveAfter : NaN;
    const memPerPeerEnd = liveAfter ? (memEnd - memBefore) / liveAfter : NaN;
    const row = (r: Route, offered: string) => [side.label, r, offered, (done(r) / (r === 'register' ? registerSeconds : elapsed)).toFixed(0), pct(pick(r).ms.get(r)!, 50), pct(pick(r).ms.get(r)!, 99)];
    console.log(`\n${side.label}: ${liveAfter}/${N} peers registered in ${registerSeconds.toFixed(1)} s; steady state ${elapsed.toFixed(1)} s; ` +
      `Redis ${(cmds / elapsed).toFixed(0)} commands/s (INFO total_commands_processed, commands run by scripts included), ` +
      `used_memory per live peer ${memPerPeer.toFixed(0)} B after registering, ${memPerPeerEnd.toFixed(0)} B at the end (both with the used-challenge markers of the last 60 s); failures: ${failures}; heartbeats failed while registering: ${early}`);
    const rows: string[][] = [
      row('register', '-'),
      row('heartbeat', (sent.heartbeat / elapsed).toFixed(0)),
      row('lookup', (sent.lookup / elapsed).toFixed(0)),
      row('list', (sent.list / elapsed).toFixed(0)),
      [side.label, 'redis', `${(cmds / elapsed).toFixed(0)} cmd/s`, `${memPerPeer.toFixed(0)} / ${memPerPeerEnd.toFixed(0)} B/peer`, '', ''],
    ];
    return rows;
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
  console.log(`${N} peers, ${M} registry processes, ttl ${TTL} s (a heartbeat every ${(TTL / 3).toFixed(1)} s: ${(N / (TTL / 3)).toFixed(0)}/s), ${LOOKUPS} lookups/s, ${LISTS} list pages/s of 100, ${SECONDS} s, at most ${IN_FLIGHT} requests in flight`);
  const rows: string[][] = [];
  for (const mode of MODES) {
    let side: RedisSide;
    if (mode === 'cluster') {
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
