// A real Redis Cluster for tests and benches: `masters` redis-server processes with
// --cluster-enabled yes (and `replicas` replicas each) on free ports in a temp folder, joined by
// `redis-cli --cluster create`. Every process is SIGKILLed and the folder removed by close(), and
// by exit and signal hooks if the test dies first.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pingRedis } from '../support/redis';

export interface ClusterNodeInfo {
  port: number;
  id: string;
  role: 'master' | 'replica';
  /** Of a replica: its master's id. */
  masterId: string | null;
  /** Slot ranges a master serves. */
  slots: Array<[number, number]>;
}

export interface TestCluster {
  ports: number[];
  /** The seeds as --redis takes them. */
  url: string;
  /** CLUSTER NODES as seen by the node at `port` (a live one by default). */
  nodes(port?: number): ClusterNodeInfo[];
  /** CLUSTER KEYSLOT of `key`. */
  keySlot(key: string): number;
  /** SIGKILLs the node at `port` and waits until it is gone. */
  kill(port: number): Promise<void>;
  /** Resolves once every live node says cluster_state:ok and every slot has a live master (or throws after timeoutMs). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** True when redis-server and redis-cli are both installed. */
export function clusterToolsAvailable(): boolean {
  return spawnSync('redis-cli', ['--version']).status === 0 && spawnSync('redis-server', ['--version']).status === 0;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port p with p and p + 10000 (its cluster bus) both free, under 55536. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 20_000 + Math.floor(Math.random() * 25_000);
    if (taken.has(p) || taken.has(p + 10_000) || taken.has(p - 10_000)) continue;
    if ((await portFree(p)) && (await portFree(p + 10_000))) {
      taken.add(p);
      return p;
    }
  }
  throw new Error('no free port pair for a cluster node');
}

function cli(port: number, ...args: string[]): string {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 });
  return r.stdout ?? '';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startCluster(o: { masters?: number; replicas?: number; nodeTimeoutMs?: number } = {}): Promise<TestCluster> {
  const masters = o.masters ?? 3;
  const replicas = o.replicas ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'p2pshare-cluster-'));
  const procs = new Map<number, ChildProcess>();
  const killAll = () => {
    for (const p of procs.values()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  };
  const onExit = () => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  };
  // Also when the test process is signalled (a runner's timeout): clean up, then die of the signal.
  const onSignal = (sig: NodeJS.Signals) => {
    onExit();
    process.kill(process.pid, sig);
  };
  const hooks = () => {
    process.off('exit', onExit);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  process.once('exit', onExit);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const taken = new Set<number>();
  const ports: number[] = [];
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) ports.push(await clusterPort(taken));
    for (const port of ports) {
      const proc = spawn('redis-server', [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', String(o.nodeTimeoutMs ?? 1000),
        // A dead master's slots fail; the others go on serving while its replica takes over.
        '--cluster-require-full-coverage', 'no',
        // Redis 7 waits 5 s before a replica's first (diskless) sync: a master killed before
        // then has a replica that never synced, which no failover promotes.
        '--repl-diskless-sync-delay', '0',
      ], { stdio: 'ignore' });
      procs.set(port, proc);
    }
    for (const port of ports) {
      const deadline = Date.now() + 10_000;
      while (!(await pingRedis(port, 500))) {
        if (Date.now() > deadline) throw new Error(`redis-server (cluster node) did not start on port ${port}`);
        await sleep(50);
      }
    }
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], {
      encoding: 'utf8', timeout: 60_000,
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
  } catch (err) {
    hooks();
    onExit();
    throw err;
  }

  const live = () => ports.filter((p) => procs.get(p)!.exitCode === null && procs.get(p)!.signalCode === null);
  function nodes(port = live()[0]!): ClusterNodeInfo[] {
    return cli(port, 'cluster', 'nodes').trim().split('\n').filter(Boolean).map((line) => {
      const f = line.split(' ');
      const slots = f.slice(8).filter((x) => /^\d+(-\d+)?$/.test(x)).map((x): [number, number] => {
        const [a, b] = x.split('-').map(Number);
        return [a!, b ?? a!];
      });
      return {
        port: Number(/:(\d+)@/.exec(f[1]!)?.[1]), id: f[0]!, role: f[2]!.includes('master') ? 'master' : 'replica', masterId: f[3] === '-' ? null : f[3]!, slots,
      };
    });
  }
  const cluster: TestCluster = {
    ports,
    url: `redis-cluster://${ports.slice(0, 3).map((p) => `127.0.0.1:${p}`).join(',')}`,
    nodes,
    keySlot: (key) => Number(cli(live()[0]!, 'cluster', 'keyslot', key).trim()),
    async kill(port) {
      const p = procs.get(port)!;
      if (p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
    },
    async waitHealthy(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const up = live();
        const ok = up.every((p) => cli(p, 'cluster', 'info').includes('cluster_state:ok'));
        const covered = ok && nodes(up[0]).filter((n) => n.role === 'master' && up.includes(n.port)).reduce((sum, n) => sum + n.slots.reduce((s, [a, b]) => s + b - a + 1, 0), 0) === 16384;
        // Healthy includes every live replica in sync with its master: only such a one can take over.
        const synced = covered && nodes(up[0]).filter((n) => n.role === 'replica' && up.includes(n.port)).every((n) => cli(n.port, 'info', 'replication').includes('master_link_status:up'));
        if (synced) return;
        if (Date.now() > deadline) throw new Error(`the cluster did not become healthy within ${timeoutMs} ms`);
        await sleep(100);
      }
    },
    async close() {
      killAll();
      await Promise.all([...procs.values()].map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once('exit', r)) : null)));
      hooks();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await cluster.waitHealthy();
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}
