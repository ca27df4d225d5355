// A registry on the "public" network and p2pshare peers behind NAT routers, all real processes in
// network namespaces (test/support/netns.ts), for the NAT traversal tests.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, type RunningProcess } from '../support/cli';
import { buildTopology, type Topology, type TopologySpec } from '../support/netns';
import { randomFile } from '../peer/support';

export const REGISTRY_PORT = 8000;
export const RENDEZVOUS_PORT = 3478;
/** Short keepalives: a NAT mapping flushed in a test heals within one of them. */
export const KEEPALIVE_S = 2;
const REDIS_PORT = 6390;

export interface NatNet {
  topo: Topology;
  dir: string;
  /** The registry URL (the first public host). */
  url: string;
  registries: RunningProcess[];
  /** Starts `p2pshare peer --name NAME` on `host` (at registry `registry`), sharing `file` (random, `size` bytes); resolves once ready. */
  owner(host: string, name: string, file: string, size: number, extra?: string[], registry?: number): Promise<{ proc: RunningProcess; sha256: string }>;
  /** `p2pshare get OWNER FILE --json` on `host` (asking registry `registry`); the parsed result, or the failure. */
  get(host: string, owner: string, file: string, extra?: string[], registry?: number): Promise<{ code: number | null; out?: GetJson; stderr: string }>;
  /** `p2pshare files OWNER --json` on `host`: the names listed, or the failure. */
  files(host: string, owner: string): Promise<{ code: number | null; names?: string[]; stderr: string }>;
  /** Starts registry `i` again (after it was stopped). */
  restartRegistry(i: number): Promise<RunningProcess>;
}

export interface GetJson {
  name: string;
  size: number;
  sha256: string;
  via: string;
  route: string;
  path: string;
}

/** Every process of one node keeps its own identity, known_peers and files. */
function envFor(dir: string, node: string): NodeJS.ProcessEnv {
  return { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: join(dir, node, 'config'), P2PSHARE_REGISTRY: undefined, P2PSHARE_REDIS_URL: undefined };
}

/**
 * Builds `spec` (removed after the test) and starts a registry on its first public host (memory
 * store unless `redisUrl`; more registries on the next public hosts with `registries`).
 */
export async function natNet(t: { after(fn: () => Promise<void>): void }, spec: TopologySpec, o: { registries?: number; redis?: boolean; registryArgs?: string[] } = {}): Promise<NatNet> {
  const topo = await buildTopology(spec, t);
  const dir = await mkdtemp(join(tmpdir(), 'p2pshare-nat-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let redisUrl: string | undefined;
  if (o.redis) {
    // Redis on the public network too: the registries reach it there, not on the root's loopback.
    const ip = topo.ip(spec.public[0]!);
    const redis = topo.spawn(spec.public[0]!, ['redis-server', '--port', String(REDIS_PORT), '--bind', ip, '--save', '', '--appendonly', 'no', '--protected-mode', 'no']);
    await redis.waitForLine(/Ready to accept connections/, 30_000);
    redisUrl = `redis://${ip}:${REDIS_PORT}`;
  }
  const registries: RunningProcess[] = [];
  const startRegistry = async (i: number) => {
    const host = spec.public[i]!;
    const ip = topo.ip(host);
    const args = [CLI, 'serve-registry', '--host', ip, '--port', String(REGISTRY_PORT), '--stun-port', String(RENDEZVOUS_PORT), ...(redisUrl ? ['--redis', redisUrl] : []), ...(o.registryArgs ?? [])];
    const reg = topo.spawn(host, [process.execPath, ...args], { env: envFor(dir, host) });
    await reg.waitForLine(/registry listening on/, 30_000);
    registries[i] = reg;
    return reg;
  };
  for (let i = 0; i < (o.registries ?? 1); i++) await startRegistry(i);
  const urlOf = (i = 0) => `http://${topo.ip(spec.public[i]!)}:${REGISTRY_PORT}`;
  const url = urlOf(0);
  return {
    topo,
    dir,
    url,
    registries,
    restartRegistry: startRegistry,
    async owner(host, name, file, size, extra = [], registry = 0) {
      const share = join(dir, host, 'share');
      await mkdir(share, { recursive: true });
      const sha256 = await randomFile(join(share, file), size);
      const proc = topo.spawn(
        host,
        [process.execPath, CLI, 'peer', '--name', name, '--registry', urlOf(registry), '--no-interactive', '--share', join(share, file), '--keepalive', String(KEEPALIVE_S), ...extra],
        { env: envFor(dir, host) },
      );
      await proc.waitForLine(/ready on udp\/tcp port/, 30_000);
      return { proc, sha256 };
    },
    async files(host, owner) {
      const r = await topo.run(host, ['env', `XDG_CONFIG_HOME=${join(dir, host, 'config')}`, 'NO_COLOR=1', process.execPath, CLI, 'files', owner, '--registry', url, '--json'], { check: false, timeoutMs: 60_000 });
      const names = r.code === 0 ? (JSON.parse(r.stdout) as { files: { name: string }[] }).files.map((f) => f.name) : undefined;
      return { code: r.code, stderr: r.stderr, ...(names ? { names } : {}) };
    },
    async get(host, owner, file, extra = [], registry = 0) {
      const downloads = join(dir, host, `dl-${Date.now()}-${Math.random().toString(36).slice(2)}`);
      const r = await topo.run(host, ['env', `XDG_CONFIG_HOME=${join(dir, host, 'config')}`, 'NO_COLOR=1', process.execPath, CLI, 'get', owner, file, '--registry', urlOf(registry), '--downloads', downloads, '--json', ...extra], { check: false, timeoutMs: 120_000 });
      return { code: r.code, stderr: r.stderr, ...(r.code === 0 ? { out: JSON.parse(r.stdout) as GetJson } : {}) };
    },
  };
}
