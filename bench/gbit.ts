// Rows 10a-10h of `npm run bench`: a 1 Gbit/s link with 5 ms one-way delay and 1 % random loss
// each way, emulated by test/support/relay.ts (UdpRelay) and, for TCP, test/support/tcp-proxy.ts
// (which never drops a byte), both in the bench process. Each row says what we reach against the
// link rate and where the CPU went: the owner process, the get process and the relay/proxy (this
// process), in CPU milliseconds per MiB of the file and as a share of the get's wall time, with
// what the owner's rate model estimated meanwhile (its P2PSHARE_UDP_DEBUG lines).
//   10a UDP get, 1 % loss each way;  10b the same link without loss (what loss alone costs);
//   10c a bare dgram blast through a relay as 10a's: what the emulator itself carries on this
//       machine, the ceiling a get is held to when a user-space relay shares the two cores;
//   10d TCP get through the proxy (no loss);
//   10f-10g UDP and TCP gets over a kernel-emulated 1 Gbit/s link with 1 % loss between two network
//       namespaces (bench/gbit-kernel.ts, root only): no relay on our cores, but no delay either;
//   10h (BENCH_GBIT_PROFILE) CPU profiles of a UDP get as 10a's.
// The delay cannot be moved into the kernel here: this kernel has neither netem nor fq (the only
// qdiscs are htb, tbf and fifo), so nothing below user space can delay a packet, and a relay that
// delays every datagram does all the per-datagram work of one that also limits its rate.
//   node build.mjs && node --import tsx bench/gbit.ts    (these rows alone)
//   BENCH_GBIT_MIB=256 BENCH_GBIT_ROUNDS=3 (defaults)
//   BENCH_GBIT_PROFILE=1 (or a folder, where the .cpuprofile files are kept): one more get, owner
//   and get run from source with `--cpu-prof`; the top self-time functions of each are printed.
import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pointRegistration, randomFile } from '../test/peer/support';
import { TEST_CONFIG_HOME, startProcess, tempDir, type RunningCli } from '../test/support/cli';
import { UdpRelay, type Impairment, type RelayCounters } from '../test/support/relay';
import { relayAndProxy } from '../test/support/relay-and-proxy';
import { dgramBlast } from './baseline';
import { kernelRows } from './gbit-kernel';
import { describeCpu, describeDrops, describeModel, measure, modelStats, summariseProfile, verdict, type Measured, type ModelStats } from './cpu';
import { cliGet, ownerBehind, startSetup, type GetOutcome, type Transport } from './peers';
import { fmtRate, loadLine, markdownTable, median, MiB, mibPerSecond } from './util';

/** The file of rows 10a-10h; 0 leaves them out of `npm run bench`. */
export const GBIT_FILE_BYTES = Number(process.env.BENCH_GBIT_MIB ?? 256) * MiB;
const ROUNDS = Number(process.env.BENCH_GBIT_ROUNDS ?? 3);
const PROFILE = process.env.BENCH_GBIT_PROFILE ?? '';
const LINK_MBIT = 1000;
const ONE_WAY_MS = 5;
const LOSS_PERCENT = 1;
const LINK_MIBPS = (LINK_MBIT * 1e6) / 8 / MiB;
/** The blast's datagrams are as large as the relay's 1500-byte path lets through, as the get's are once it has probed. */
const BLAST_PAYLOAD = 1472;
const REPO = resolve(__dirname, '..');

export interface GbitRow {
  label: string;
  ours: string;
  baseline: string;
  ratio: string;
  notes: string;
}

const link = (seed: number, lossPercent = LOSS_PERCENT): Impairment => ({ rateMbit: LINK_MBIT, delayMs: ONE_WAY_MS, lossPercent, seed });

function delta(after: RelayCounters, before: RelayCounters): RelayCounters {
  const d = { ...after };
  for (const k of Object.keys(d) as Array<keyof RelayCounters>) d[k] = after[k] - before[k];
  return d;
}

const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '—');
const rangeOf = (rates: number[]) => (rates.length > 1 ? ` (range ${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)})` : '');

interface UdpRun {
  out: GetOutcome;
  m: Measured;
  data: RelayCounters;
  acks: RelayCounters;
  model: ModelStats | undefined;
}

/**
 * Rows 10a-10h: owners of `file` (in `share`, `bytes` long) behind 1 Gbit/s relays and a proxy,
 * registered at `registryUrl`; `dir` for downloads and profiles.
 */
export async function gbitRows(o: { registryUrl: string; share: string; file: string; bytes: number; dir: string; log: (line: string) => void }): Promise<GbitRow[]> {
  const closers: Array<() => Promise<unknown>> = [];
  try {
    const debug = { P2PSHARE_UDP_DEBUG: '1' };
    // 'gbit': the lossy relay and the proxy on one port number; 'gbit-clean': a relay without loss.
    const lossy = await ownerBehind(
      o.registryUrl,
      'gbit',
      o.share,
      (port) => relayAndProxy({ target: { address: '127.0.0.1', port }, toTarget: link(11), toClient: link(12) }, { target: { address: '127.0.0.1', port }, delayMs: ONE_WAY_MS, rateMbit: LINK_MBIT }),
      debug,
    );
    closers.push(() => lossy.close(), () => lossy.front.relay.close(), () => lossy.front.proxy.close());
    const clean = await ownerBehind(o.registryUrl, 'gbit-clean', o.share, (port) => UdpRelay.start({ target: { address: '127.0.0.1', port }, toTarget: link(13, 0), toClient: link(14, 0) }), debug);
    closers.push(() => clean.close(), () => clean.front.close());
    let n = 0;
    const timeoutMs = Math.max(120_000, (o.bytes / MiB) * 1000);
    const get = (peer: string, via: Transport) => cliGet({ registryUrl: o.registryUrl, peer, file: o.file, via, downloads: join(o.dir, `gbit-${n++}`), timeoutMs });
    // A UDP get from `peer` (its process `owner`) through `relay`, with what the relay and the owner's rate model saw.
    const udpGet = async (peer: string, owner: RunningCli, relay: UdpRelay): Promise<UdpRun> => {
      const data = { ...relay.counters.toClient };
      const acks = { ...relay.counters.toTarget };
      const from = owner.stderr.length;
      const u = await measure(owner.proc.pid, () => get(peer, 'udp'));
      return { out: u.result, m: u.m, data: delta(relay.counters.toClient, data), acks: delta(relay.counters.toTarget, acks), model: modelStats(owner.stderr.slice(from)) };
    };

    const udp: UdpRun[] = [];
    const udpClean: UdpRun[] = [];
    const tcp: Array<{ out: GetOutcome; m: Measured }> = [];
    const blast: Array<{ rate: number; m: Measured; relay: RelayCounters }> = [];
    // Warm-up: page cache, the owners' JIT.
    await get('gbit', 'udp');
    await get('gbit-clean', 'udp');
    const failures: string[] = [];
    const keep = <T extends { out: GetOutcome }>(runs: T[], what: string, r: T) => {
      if (r.out.ok) runs.push(r);
      else failures.push(`${what} failed: ${r.out.failure}`);
      return r.out.ok ? fmtRate(mibPerSecond(o.bytes, r.out.seconds)) : 'failed';
    };
    for (let r = 0; r < ROUNDS && failures.length === 0; r++) {
      const lossyRate = keep(udp, 'UDP get (1 % loss)', await udpGet('gbit', lossy.cli, lossy.front.relay));
      const cleanRate = keep(udpClean, 'UDP get (0 % loss)', await udpGet('gbit-clean', clean.cli, clean.front));
      const t = await measure(lossy.cli.proc.pid, () => get('gbit', 'tcp'));
      const tcpRate = keep(tcp, 'TCP get', { out: t.result, m: t.m });
      // The same link settings in front of a bare dgram receiver: what the emulator itself carries.
      let blastRelay: UdpRelay | undefined;
      const b = await measure(undefined, () =>
        dgramBlast(o.bytes, BLAST_PAYLOAD, async (port) => {
          blastRelay = await UdpRelay.start({ target: { address: '127.0.0.1', port }, toTarget: link(20 + r), toClient: link(30 + r) });
          return blastRelay.port;
        }).finally(() => blastRelay?.close()),
      );
      blast.push({ rate: mibPerSecond(b.result.receivedBytes, b.result.seconds), m: b.m, relay: { ...blastRelay!.counters.toTarget } });
      o.log(`1 Gbit/s round ${r + 1}: UDP get ${lossyRate} (1 % loss), ${cleanRate} (0 % loss), TCP get ${tcpRate}, blast through the relay ${fmtRate(blast[r]!.rate)}`);
    }
    const rows = describeRows(o.bytes, { udp, udpClean, tcp, blast }, failures);
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined); // the relays' timers off the cores
    rows.push(...(await kernelRows({ share: o.share, file: o.file, bytes: o.bytes, rounds: ROUNDS, log: o.log })));
    if (PROFILE) rows.push(...(await profileRow(o)));
    return rows;
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
}

function describeRows(
  bytes: number,
  r: { udp: UdpRun[]; udpClean: UdpRun[]; tcp: Array<{ out: GetOutcome; m: Measured }>; blast: Array<{ rate: number; m: Measured; relay: RelayCounters }> },
  failures: string[],
): GbitRow[] {
  const mib = bytes / MiB;
  const linkLabel = `${LINK_MBIT / 1000} Gbit/s, ${ONE_WAY_MS} ms one-way`;
  const linkCell = `${fmtRate(LINK_MIBPS)} (link rate)`;
  const rates = (xs: Array<{ out: GetOutcome }>) => xs.map((x) => mibPerSecond(bytes, x.out.seconds));
  const runs = (xs: unknown[]) => `${xs.length} run${xs.length === 1 ? '' : 's'}${failures.length ? ` (then ${failures.join('; ')})` : ''}`;
  const inner = (xs: Array<{ out: GetOutcome }>) => {
    const s = xs.flatMap((x) => (x.out.innerSeconds !== undefined ? [x.out.innerSeconds] : []));
    return s.length ? `; get's own timer ${fmtRate(mibPerSecond(bytes, median(s)))}` : '';
  };
  const cell = (xs: Array<{ out: GetOutcome }>) => (xs.length ? fmtRate(median(rates(xs))) : 'failed');
  const blastRate = median(r.blast.map((b) => b.rate));
  const sum = (xs: RelayCounters[], k: keyof RelayCounters) => xs.reduce((a, c) => a + c[k], 0);
  const udpNames = { owner: 'owner', requester: 'get', relay: 'relay' };
  const udpNotes = (xs: UdpRun[]) => {
    const forwarded = median(xs.map((u) => mibPerSecond(u.data.bytesForwarded, u.out.innerSeconds ?? u.out.seconds)));
    const data = xs.map((u) => u.data);
    const acks = xs.map((u) => u.acks);
    return (
      `${runs(xs)}${rangeOf(rates(xs))}${inner(xs)}; ${ratio(median(rates(xs)), blastRate)} of what a bare blast gets through the same relay (10c); ` +
      `${verdict(xs.map((u) => u.m), udpNames)}; ${describeCpu(xs.map((u) => u.m), bytes, udpNames)}; ${describeModel(xs.map((u) => u.model))}; ` +
      `relay forwarded ${(sum(data, 'bytesForwarded') / Math.max(1, xs.length) / MiB).toFixed(0)} MiB per get data-direction (${forwarded.toFixed(0)} MiB/s over the get's own time), ` +
      `dropped at random ${sum(data, 'lost')}/${sum(data, 'received')} data-direction and ${sum(acks, 'lost')}/${sum(acks, 'received')} ack-direction, queue drops ${sum(data, 'queueDrops')} (all runs); ${describeDrops(xs.map((u) => u.m))}`
    );
  };
  const tcpNames = { owner: 'owner', requester: 'get', relay: 'proxy' };
  return [
    {
      label: `10a. relay ${linkLabel}, ${LOSS_PERCENT} % loss each way, ${mib} MiB: UDP get vs link rate (target 0.70)`,
      ours: cell(r.udp),
      baseline: linkCell,
      ratio: ratio(median(rates(r.udp)), LINK_MIBPS),
      notes: udpNotes(r.udp),
    },
    {
      label: `10b. the same relay without loss (${linkLabel}, 0 %), ${mib} MiB: UDP get vs link rate`,
      ours: cell(r.udpClean),
      baseline: linkCell,
      ratio: ratio(median(rates(r.udpClean)), LINK_MIBPS),
      notes: udpNotes(r.udpClean),
    },
    {
      label: `10c. bare dgram blast (${BLAST_PAYLOAD} B datagrams, no protocol) through a relay as 10a's (${linkLabel}, ${LOSS_PERCENT} % loss) vs link rate: the emulator's ceiling here`,
      ours: fmtRate(blastRate),
      baseline: linkCell,
      ratio: ratio(blastRate, LINK_MIBPS),
      notes:
        `${r.blast.length} run${r.blast.length === 1 ? '' : 's'}${rangeOf(r.blast.map((b) => b.rate))}; rate at the receiver, first to last datagram; ${describeCpu(r.blast.map((b) => b.m), median(r.blast.map((b) => b.relay.bytesForwarded)), { relay: 'relay' }, 'relayed')}; ` +
        `the relay took in ${sum(r.blast.map((b) => b.relay), 'received')} of ${r.blast.length * Math.ceil(bytes / BLAST_PAYLOAD)} datagrams sent (the rest overflowed its socket), queue drops ${sum(r.blast.map((b) => b.relay), 'queueDrops')}; ${describeDrops(r.blast.map((b) => b.m))}`,
    },
    {
      label: `10d. TCP proxy ${linkLabel}, ${mib} MiB: TCP get vs link rate`,
      ours: cell(r.tcp),
      baseline: linkCell,
      ratio: ratio(median(rates(r.tcp)), LINK_MIBPS),
      notes:
        `${runs(r.tcp)}${rangeOf(rates(r.tcp))}${inner(r.tcp)}; the proxy splits the TCP connection and never drops a byte: this TCP sees NO loss (the control exchange crosses 10a's lossy relay); ` +
        `${verdict(r.tcp.map((t) => t.m), tcpNames)}; ${describeCpu(r.tcp.map((t) => t.m), bytes, tcpNames)}`,
    },
  ];
}

/** `node --cpu-prof --import tsx src/cli.ts ...`: the source, so the profile names our functions (the bundle is minified). */
function profiledNode(dir: string, name: string): string[] {
  return ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', `${name}.cpuprofile`, '--import', pathToFileURL(join(REPO, 'node_modules/tsx/dist/loader.mjs')).href];
}

/** One more UDP get with owner and get profiled; the top self-time functions of each, as a row. */
async function profileRow(o: { registryUrl: string; share: string; file: string; bytes: number; dir: string; log: (line: string) => void }): Promise<GbitRow[]> {
  const dir = PROFILE === '1' ? join(o.dir, 'profiles') : resolve(PROFILE);
  await mkdir(dir, { recursive: true });
  const cli = join(REPO, 'src/cli.ts');
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: TEST_CONFIG_HOME };
  delete env.P2PSHARE_REGISTRY;
  const owner = startProcess(process.execPath, [...profiledNode(dir, 'owner'), cli, 'peer', '--name', 'gbit-prof', '--registry', o.registryUrl, '--no-interactive'], { cwd: o.share, env, label: 'profiled owner' });
  let relay: UdpRelay | undefined;
  let outcome: GetOutcome;
  try {
    const port = Number((await owner.waitForLine(/ready on udp\/tcp port (\d+)/, 60_000))[1]);
    relay = await UdpRelay.start({ target: { address: '127.0.0.1', port }, toTarget: link(41), toClient: link(42) });
    await pointRegistration(o.registryUrl, 'gbit-prof', relay.port);
    outcome = await cliGet({ registryUrl: o.registryUrl, peer: 'gbit-prof', file: o.file, via: 'udp', downloads: join(o.dir, 'gbit-prof'), timeoutMs: 300_000, cli, nodeArgs: profiledNode(dir, 'get') });
  } finally {
    await relay?.close();
    await owner.stop(); // SIGTERM: the peer exits by itself, and the profile is written at exit
  }
  const files = await readdir(dir);
  const show = (name: string) => {
    if (!files.includes(`${name}.cpuprofile`)) return `${name}: no profile written`;
    const s = summariseProfile(join(dir, `${name}.cpuprofile`), 8);
    return `${name} (${(s.totalMs / 1000).toFixed(1)} s sampled, idle ${s.idlePercent.toFixed(0)} %): ${s.top.map((t) => `${t.name} ${t.percent.toFixed(1)} %`).join(', ')}`;
  };
  o.log(`profiles in ${dir}`);
  return [
    {
      label: `10h. profiles of one more UDP get as 10a (owner and get from source with --cpu-prof): top self time`,
      ours: outcome.ok ? fmtRate(mibPerSecond(o.bytes, outcome.seconds)) : `failed: ${outcome.failure}`,
      baseline: `${fmtRate(LINK_MIBPS)} (link rate)`,
      ratio: outcome.ok ? ratio(mibPerSecond(o.bytes, outcome.seconds), LINK_MIBPS) : '—',
      notes: `profiling slows both sides, so this rate is not 10a's; ${show('owner')}; ${show('get')}`,
    },
  ];
}

async function main(): Promise<void> {
  const loadBefore = loadLine();
  const { dir, cleanup } = await tempDir('p2pshare-bench-gbit-');
  try {
    const share = join(dir, 'share');
    await mkdir(share, { recursive: true });
    const bytes = GBIT_FILE_BYTES;
    await randomFile(join(share, 'gbit.bin'), bytes);
    const setup = await startSetup(share);
    try {
      const rows = await gbitRows({ registryUrl: setup.registryUrl, share, file: 'gbit.bin', bytes, dir, log: (l) => process.stderr.write(`# ${l}\n`) });
      console.log(`load average (1/5/15 min) at start ${loadBefore}, at end ${loadLine()}\n`);
      console.log(markdownTable(['case', 'ours', 'baseline', 'ratio', 'notes'], rows.map((r) => [r.label, r.ours, r.baseline, r.ratio, r.notes]), [1, 2, 3]));
    } finally {
      await setup.close();
    }
  } finally {
    await cleanup();
  }
}

if (process.argv[1]?.endsWith('gbit.ts')) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
