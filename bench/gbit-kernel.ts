// Rows 10f-10g of `npm run bench` (see bench/gbit.ts): the 1 Gbit/s link with 1 % random loss
// each way emulated by the kernel, so that no user-space relay shares the two cores with the peers.
// Two network namespaces joined by a veth pair; on each end a tbf qdisc at 1 Gbit/s (queue of 15 ms,
// like the relay's 1.5 x BDP) and an nftables rule dropping 1 % of the UDP datagrams leaving it at
// random (`numgen random`). TCP is not dropped: nftables sees TCP's GSO bursts (up to 64 KiB),
// not segments, and turning GSO off (gso_max_segs 1) cuts even a plain TCP stream over the veth to
// ~45 MiB/s on this machine. This kernel has neither netem nor fq, so nothing here can delay a
// packet: this link has no added delay (RTT ~0.1 ms), unlike 10a's 5 ms each way. It shows what
// owner and get reach at 1 Gbit/s (with loss, for UDP) when the emulator costs no CPU of ours.
//   owner namespace (…-ko, 10.77.0.1): the owner peer, started from the bench child below
//   get namespace (…-kg, 10.77.0.2):   a bench child process (the registry, in process) and the gets
// Root only (otherwise the rows say why they are missing); the namespaces are named as
// test/support/netns.ts names its own, so its cleanupStale() removes what a killed run left.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startRegistry } from '../src/registry/index';
import { CLI, TEST_CONFIG_HOME, startProcess, tempDir } from '../test/support/cli';
import { NETNS_PREFIX, netnsUnavailable } from '../test/support/netns';
import { describeCpu, describeModel, measure, modelStats, verdict, type Measured, type ModelStats } from './cpu';
import { cliGet, type GetOutcome, type Transport } from './peers';
import { fmtRate, median, MiB, mibPerSecond } from './util';

const OWNER_IP = '10.77.0.1';
const GET_IP = '10.77.0.2';
const LINK_MIBPS = 1e9 / 8 / MiB;
const CHILD_ENV = 'BENCH_GBIT_KERNEL_CHILD';

export interface KernelRow {
  label: string;
  ours: string;
  baseline: string;
  ratio: string;
  notes: string;
}

interface ChildSpec {
  ownerNs: string;
  share: string;
  file: string;
  bytes: number;
  rounds: number;
}

interface Run {
  via: Transport;
  out: GetOutcome;
  m: Measured;
  model: ModelStats | undefined;
}

function sh(cmd: string, args: string[], input?: string): void {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
}

/** The two namespaces and the link between them; returns their names. */
function buildLink(): { ownerNs: string; getNs: string } {
  const tag = `${NETNS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
  const ends = [
    { ns: `${tag}-ko`, dev: 'k0', ip: OWNER_IP },
    { ns: `${tag}-kg`, dev: 'k1', ip: GET_IP },
  ] as const;
  sh('ip', ['netns', 'add', ends[0].ns]);
  sh('ip', ['netns', 'add', ends[1].ns]);
  sh('ip', ['link', 'add', ends[0].dev, 'netns', ends[0].ns, 'type', 'veth', 'peer', 'name', ends[1].dev, 'netns', ends[1].ns]);
  for (const e of ends) {
    sh('ip', ['-n', e.ns, 'addr', 'add', `${e.ip}/24`, 'dev', e.dev]);
    sh('ip', ['-n', e.ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', e.ns, 'link', 'set', e.dev, 'up']);
    sh('tc', ['-n', e.ns, 'qdisc', 'add', 'dev', e.dev, 'root', 'tbf', 'rate', '1gbit', 'burst', '128kb', 'latency', '15ms']);
    const rules = `table inet gbitloss {\n  chain out {\n    type filter hook output priority 0; policy accept;\n    oifname "${e.dev}" meta l4proto udp numgen random mod 1000 < 10 counter drop\n  }\n}\n`;
    sh('ip', ['netns', 'exec', e.ns, 'nft', '-f', '-'], rules);
  }
  return { ownerNs: ends[0].ns, getNs: ends[1].ns };
}

/** Packets the loss rule dropped, and packets tbf sent, on one end. */
function linkCounters(ns: string, dev: string): { dropped: number; sent: number } {
  const nft = spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'gbitloss'], { encoding: 'utf8' }).stdout ?? '';
  const tc = spawnSync('tc', ['-n', ns, '-s', 'qdisc', 'show', 'dev', dev], { encoding: 'utf8' }).stdout ?? '';
  return { dropped: Number(/counter packets (\d+)/.exec(nft)?.[1] ?? NaN), sent: Number(/Sent \d+ bytes (\d+) pkt/.exec(tc)?.[1] ?? NaN) };
}

/**
 * Rows 10f-10g: `rounds` alternating UDP and TCP gets of `file` (`bytes`, in `share`) over the
 * kernel-emulated link, each side's CPU per MiB, and the drops the link made.
 */
export async function kernelRows(o: { share: string; file: string; bytes: number; rounds: number; log: (line: string) => void }): Promise<KernelRow[]> {
  const mib = o.bytes / MiB;
  const label = (via: string) => `10${via === 'UDP' ? 'f. kernel link 1 Gbit/s (tbf), 1 % loss each way (nftables)' : 'g. kernel link 1 Gbit/s (tbf), no loss'}, NO added delay, two namespaces, ${mib} MiB: ${via} get vs link rate`;
  const why = netnsUnavailable();
  if (why !== null) return ['UDP', 'TCP'].map((via) => ({ label: label(via), ours: 'n/a', baseline: 'n/a', ratio: '—', notes: `not measured: ${why}` }));
  let ns: { ownerNs: string; getNs: string } | undefined;
  try {
    ns = buildLink();
    const spec: ChildSpec = { ownerNs: ns.ownerNs, share: o.share, file: o.file, bytes: o.bytes, rounds: o.rounds };
    const tsx = pathToFileURL(join(__dirname, '../node_modules/tsx/dist/loader.mjs')).href;
    const child = startProcess('ip', ['netns', 'exec', ns.getNs, process.execPath, '--import', tsx, join(__dirname, 'gbit-kernel.ts')], {
      env: { ...process.env, [CHILD_ENV]: JSON.stringify(spec) },
      label: 'kernel-link bench child',
    });
    const line = await child.waitForLine(/^RESULT (.*)$/, Math.max(300_000, o.rounds * mib * 2000));
    await child.exited;
    for (const l of child.stderr.split('\n').filter((x) => x.startsWith('# '))) o.log(l.slice(2));
    const runs = JSON.parse(line[1]!) as Run[];
    const owner = linkCounters(ns.ownerNs, 'k0');
    const get = linkCounters(ns.getNs, 'k1');
    const drops = `the link dropped ${owner.dropped} UDP datagrams owner→get and ${get.dropped} get→owner at random, of ${owner.sent} and ${get.sent} packets sent (all runs, UDP and TCP, warm-up included)`;
    return (['udp', 'tcp'] as const).map((via) => {
      const rs = runs.filter((r) => r.via === via && r.out.ok);
      const failed = runs.find((r) => r.via === via && !r.out.ok);
      const rates = rs.map((r) => mibPerSecond(o.bytes, r.out.seconds));
      const inner = rs.flatMap((r) => (r.out.innerSeconds !== undefined ? [r.out.innerSeconds] : []));
      const names = { owner: 'owner', requester: 'get' };
      const rate = median(rates);
      return {
        label: label(via.toUpperCase()),
        ours: rs.length ? fmtRate(rate) : `failed: ${failed?.out.failure}`,
        baseline: `${fmtRate(LINK_MIBPS)} (link rate)`,
        ratio: rs.length ? (rate / LINK_MIBPS).toFixed(2) : '—',
        notes:
          `${rs.length} run${rs.length === 1 ? '' : 's'}${failed ? ` (then failed: ${failed.out.failure})` : ''}${rates.length > 1 ? ` (range ${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)})` : ''}` +
          `${inner.length ? `; get's own timer ${fmtRate(mibPerSecond(o.bytes, median(inner)))}` : ''}; no user-space relay: ${verdict(rs.map((r) => r.m), names)}; ${describeCpu(rs.map((r) => r.m), o.bytes, names)}` +
          `${via === 'udp' ? `; ${describeModel(rs.map((r) => r.model))}` : '; kernel TCP (CUBIC) without loss: the rule drops UDP only'}; ${drops}`,
      };
    });
  } finally {
    if (ns) for (const n of [ns.ownerNs, ns.getNs]) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  }
}

/** In the get namespace: a registry, the owner (in the owner namespace), and the gets. */
async function child(spec: ChildSpec): Promise<void> {
  const log = (l: string) => process.stderr.write(`# ${l}\n`);
  const reg = await startRegistry({ host: GET_IP, port: 0, ttl: 3600, stunPort: null });
  const { dir, cleanup } = await tempDir('p2pshare-bench-kernel-');
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: TEST_CONFIG_HOME, P2PSHARE_UDP_DEBUG: '1' };
  delete env.P2PSHARE_REGISTRY;
  delete env[CHILD_ENV];
  const args = ['netns', 'exec', spec.ownerNs, process.execPath, CLI, 'peer', '--name', 'gbit-kernel', '--registry', reg.url, '--advertise', OWNER_IP, '--no-interactive'];
  const owner = startProcess('ip', args, { cwd: spec.share, env, label: 'owner in its namespace' });
  const runs: Run[] = [];
  try {
    await owner.waitForLine(/ready on udp\/tcp port (\d+)/, 60_000);
    let n = 0;
    const get = async (via: Transport): Promise<Run> => {
      const from = owner.stderr.length;
      const timeoutMs = Math.max(120_000, (spec.bytes / MiB) * 1000);
      // `ip netns exec` execs the owner's node in place: its pid is the owner's.
      const { result, m } = await measure(owner.proc.pid, () => cliGet({ registryUrl: reg.url, peer: 'gbit-kernel', file: spec.file, via, downloads: join(dir, `k-${n++}`), timeoutMs }));
      return { via, out: result, m, model: via === 'udp' ? modelStats(owner.stderr.slice(from)) : undefined };
    };
    await get('udp'); // warm-up: page cache, the owner's JIT
    for (let r = 0; r < spec.rounds; r++) {
      for (const via of ['udp', 'tcp'] as const) {
        const run = await get(via);
        runs.push(run);
        log(`kernel link round ${r + 1}: ${via.toUpperCase()} get ${run.out.ok ? fmtRate(mibPerSecond(spec.bytes, run.out.seconds)) : `failed: ${run.out.failure}`}`);
      }
    }
  } finally {
    await owner.stop();
    await reg.close();
    await cleanup();
  }
  console.log(`RESULT ${JSON.stringify(runs)}`);
}

const childSpec = process.env[CHILD_ENV];
if (childSpec && process.argv[1]?.endsWith('gbit-kernel.ts')) {
  child(JSON.parse(childSpec) as ChildSpec).then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
