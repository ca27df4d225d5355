// `npm run bench`: our transfers beside what the platform can do, every row measured in this run.
//   node build.mjs && node --import tsx bench/run.ts
//   BENCH_LOOP_ROUNDS=5 BENCH_ROUNDS=3 BENCH_MIB=256 BENCH_LINK_MIB=64 BENCH_JPEG_RUNS=7 (defaults)
//   rows 8a-8b: BENCH_MANY_FILES=10000 BENCH_MANY_BYTES=4096 BENCH_MANY_ROUNDS=3 (bench/many-files.ts)
//   rows 9a-9b: BENCH_PMTU_ROUNDS=3 (bench/pmtu.ts; the file of rows 3-4)
//   rows 10a-10h: BENCH_GBIT_MIB=256 BENCH_GBIT_ROUNDS=3 BENCH_GBIT_PROFILE= (bench/gbit.ts: 1 Gbit/s,
//     5 ms one-way, 1 % loss, with the CPU time of owner, get and relay; BENCH_GBIT_MIB=0 skips them;
//     BENCH_GBIT_PROFILE=1 or a folder adds CPU profiles of a UDP get; alone: node --import tsx bench/gbit.ts)
// Rows 6a-6b (across NATs) need root and nftables; they reuse BENCH_LINK_MIB and BENCH_ROUNDS.
// Our gets are real processes (`p2pshare get ... --json`, timed from spawn to exit) against a
// real owner peer process, except the JPEG row, which calls fetchFile() in this process so that
// milliseconds are not swamped by Node's start-up. Pairs run alternately (A, B, A, B, ...) and
// each cell is the median of its runs, so a burst of outside load does not land on one side only.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { tempDir } from '../test/support/cli';
import { randomFile } from '../test/peer/support';
import { UdpRelay, type Impairment } from '../test/support/relay';
import { relayAndProxy } from '../test/support/relay-and-proxy';
import { dgramBlast, startBareTcpServer } from './baseline';
import { GBIT_FILE_BYTES, gbitRows } from './gbit';
import { manyFilesRows } from './many-files';
import { natRows } from './nat';
import { pathMtuRows } from './pmtu';
import { startupRows } from './startup';
import { cliGet, inProcessGet, ownerBehind, startSetup, writeJpeg, type GetOutcome, type Transport } from './peers';
import { fmtRate, loadLine, machineLine, markdownTable, revisionLine, MiB, median, mibPerSecond } from './util';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3); // link rows
const LOOP_ROUNDS = Number(process.env.BENCH_LOOP_ROUNDS ?? 5); // loopback pairs: short, so noisier
const BIG = Number(process.env.BENCH_MIB ?? 256) * MiB;
const LINK_FILE = Number(process.env.BENCH_LINK_MIB ?? 64) * MiB;
const JPEG_RUNS = Number(process.env.BENCH_JPEG_RUNS ?? 7);
const PAYLOAD = 1200; // DEFAULT_MAX_PAYLOAD of the UDP transport
const LINK_MBIT = 100;
const ONE_WAY_MS = 20;
const LINK_MIBPS = (LINK_MBIT * 1e6) / 8 / MiB;

interface Row {
  label: string;
  ours: string;
  baseline: string;
  ratio: string;
  notes: string;
}

/** Repeated runs of one side of a row; stops repeating after the first failure. */
class Series {
  readonly seconds: number[] = [];
  readonly innerSeconds: number[] = [];
  failure: string | undefined;
  notBuilt = false;
  get failed(): boolean {
    return this.failure !== undefined;
  }
  add(o: GetOutcome): void {
    if (o.ok) {
      this.seconds.push(o.seconds);
      if (o.innerSeconds !== undefined) this.innerSeconds.push(o.innerSeconds);
    }
    else {
      this.failure = o.failure ?? 'failed';
      this.notBuilt = o.notBuilt;
    }
  }
  rate(bytes: number): number {
    return this.seconds.length ? mibPerSecond(bytes, median(this.seconds)) : NaN;
  }
  cell(bytes: number): string {
    if (this.notBuilt) return 'n/a (UDP transport not built)';
    if (this.failed && !this.seconds.length) return `failed: ${this.failure}`;
    return fmtRate(this.rate(bytes));
  }
  /** Slowest–fastest run, to show the noise. */
  range(bytes: number): string {
    return this.seconds.length > 1 ? ` (range ${rangeOf(this.seconds.map((t) => mibPerSecond(bytes, t)))})` : '';
  }
  /** The get's own timer (--json "seconds"), without process start-up, lookup and listing. */
  inner(bytes: number): string {
    return this.innerSeconds.length ? `; get's own timer ${fmtRate(mibPerSecond(bytes, median(this.innerSeconds)))}` : '';
  }
  runs(): string {
    if (this.notBuilt) return 'not measured';
    return `${this.seconds.length} run${this.seconds.length === 1 ? '' : 's'}${this.failed && !this.notBuilt ? `, then failed: ${this.failure}` : ''}`;
  }
}

function rangeOf(rates: number[]): string {
  const digits = Math.max(...rates) < 20 ? 1 : 0; // the link rows need a decimal to show any spread
  return `${Math.min(...rates).toFixed(digits)}–${Math.max(...rates).toFixed(digits)}`;
}

function ratio(ours: number, base: number): string {
  return Number.isFinite(ours) && Number.isFinite(base) && base > 0 ? (ours / base).toFixed(2) : '—';
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadBefore = loadLine();
  const { dir, cleanup } = await tempDir('p2pshare-bench-');
  const closers: Array<() => Promise<unknown> | void> = [];
  const rows: Row[] = [];
  const footnotes: string[] = [];
  try {
    const share = join(dir, 'share');
    await mkdir(share, { recursive: true });
    await randomFile(join(share, 'big.bin'), BIG);
    await randomFile(join(share, 'link.bin'), LINK_FILE);
    const jpegBytes = await writeJpeg(join(share, 'photo.jpg'), 1920, 1080, 90);
    const setup = await startSetup(share);
    closers.push(() => setup.close());
    let n = 0;
    const downloads = () => join(dir, `dl-${n++}`);
    const get = (peer: string, file: string, via: Transport, timeoutMs: number) =>
      cliGet({ registryUrl: setup.registryUrl, peer, file, via, downloads: downloads(), timeoutMs });

    // Row 5 first: it also tells whether this build has the UDP transport at all.
    const jpegUdp = new Series();
    const jpegTcp = new Series();
    for (let i = 0; i < JPEG_RUNS; i++) {
      for (const [s, via] of [[jpegUdp, 'udp'], [jpegTcp, 'tcp']] as const) {
        if (!s.failed) s.add(await inProcessGet({ registryUrl: setup.registryUrl, peer: 'owner', file: 'photo.jpg', via, downloads: downloads(), timeoutMs: 30_000 }));
      }
    }
    const udpBuilt = !jpegUdp.notBuilt;
    log(`UDP transport ${udpBuilt ? 'present' : 'not built (UDP rows: n/a)'}`);

    // Row 1: loopback, bare dgram blast vs UDP get.
    const blastRates: number[] = [];
    let received = 0;
    let sent = 0;
    const udpLoop = new Series();
    // One unmeasured warm-up of each side (page cache, JIT, socket buffers), then the rounds.
    await dgramBlast(BIG, PAYLOAD);
    if (udpBuilt) await get('owner', 'big.bin', 'udp', 180_000);
    for (let r = 0; r < LOOP_ROUNDS; r++) {
      const b = await dgramBlast(BIG, PAYLOAD);
      blastRates.push(mibPerSecond(b.receivedBytes, b.seconds));
      received += b.receivedBytes;
      sent += b.sentBytes;
      if (udpBuilt && !udpLoop.failed) udpLoop.add(await get('owner', 'big.bin', 'udp', 180_000));
      log(`loopback UDP round ${r + 1}: blast ${fmtRate(blastRates[r]!)}, get ${udpLoop.seconds[r] ? fmtRate(mibPerSecond(BIG, udpLoop.seconds[r]!)) : udpLoop.failure ?? 'n/a'}`);
    }
    if (!udpBuilt) udpLoop.notBuilt = true;
    const blast = median(blastRates);
    rows.push({
      label: `1. loopback ${BIG / MiB} MiB: UDP get vs bare dgram blast (${PAYLOAD} B datagrams)`,
      ours: udpLoop.cell(BIG),
      baseline: fmtRate(blast),
      ratio: ratio(udpLoop.rate(BIG), blast),
      notes: `${udpLoop.runs()}${udpLoop.range(BIG)}${udpLoop.inner(BIG)}; blast range ${rangeOf(blastRates)}; blast receiver got ${((100 * received) / sent).toFixed(1)} % of what was sent`,
    });

    // Row 2: loopback, bare TCP pipe to disk vs TCP get.
    const bare = await startBareTcpServer(join(share, 'big.bin'));
    closers.push(() => bare.close());
    const bareTcp = new Series();
    const tcpLoop = new Series();
    await bare.pipeOnce(dir);
    await get('owner', 'big.bin', 'tcp', 180_000);
    for (let r = 0; r < LOOP_ROUNDS; r++) {
      const run = await bare.pipeOnce(dir);
      bareTcp.add({ ok: run.code === 0, seconds: run.seconds, notBuilt: false, ...(run.code === 0 ? {} : { failure: run.stderr.trim() }) });
      if (!tcpLoop.failed) tcpLoop.add(await get('owner', 'big.bin', 'tcp', 180_000));
      log(`loopback TCP round ${r + 1}: bare ${bareTcp.seconds[r] ? fmtRate(mibPerSecond(BIG, bareTcp.seconds[r]!)) : bareTcp.failure}, get ${tcpLoop.seconds[r] ? fmtRate(mibPerSecond(BIG, tcpLoop.seconds[r]!)) : tcpLoop.failure}`);
    }
    rows.push({
      label: `2. loopback ${BIG / MiB} MiB: TCP get vs bare Node TCP pipe to disk`,
      ours: tcpLoop.cell(BIG),
      baseline: bareTcp.cell(BIG),
      ratio: ratio(tcpLoop.rate(BIG), bareTcp.rate(BIG)),
      notes: `${tcpLoop.runs()}${tcpLoop.range(BIG)}${tcpLoop.inner(BIG)}; bare pipe range ${bareTcp.seconds.length ? rangeOf(bareTcp.seconds.map((t) => mibPerSecond(BIG, t))) : '—'}`,
    });

    // Rows 3 and 4: an emulated 100 Mbit/s link with 20 ms one-way delay each way.
    const link = (lossPercent: number, seed: number): Impairment => ({ rateMbit: LINK_MBIT, delayMs: ONE_WAY_MS, lossPercent, seed });
    // Two more owner processes of the same files, each reached only through its link.
    const cleanOwner = await ownerBehind(setup.registryUrl, 'link-clean', share, async (port) => {
      const target = { address: '127.0.0.1', port };
      return relayAndProxy({ target, toTarget: link(0, 1), toClient: link(0, 2) }, { target, delayMs: ONE_WAY_MS, rateMbit: LINK_MBIT });
    });
    closers.push(() => cleanOwner.close());
    const clean = cleanOwner.front;
    closers.push(() => Promise.all([clean.relay.close(), clean.proxy.close()]));
    const lossyOwner = await ownerBehind(setup.registryUrl, 'link-lossy', share, (port) => UdpRelay.start({ target: { address: '127.0.0.1', port }, toTarget: link(1, 3), toClient: link(1, 4) }));
    closers.push(() => lossyOwner.close());
    const lossy = lossyOwner.front;
    closers.push(() => lossy.close());
    const udpClean = new Series();
    const udpLossy = new Series();
    const tcpLink = new Series();
    const linkTimeout = Math.max(60_000, (LINK_FILE / MiB / LINK_MIBPS) * 10_000);
    for (let r = 0; r < ROUNDS; r++) {
      if (udpBuilt && !udpClean.failed) udpClean.add(await get('link-clean', 'link.bin', 'udp', linkTimeout));
      if (!tcpLink.failed) tcpLink.add(await get('link-clean', 'link.bin', 'tcp', linkTimeout));
      if (udpBuilt && !udpLossy.failed) udpLossy.add(await get('link-lossy', 'link.bin', 'udp', linkTimeout));
      log(`link round ${r + 1} done`);
    }
    if (!udpBuilt) udpClean.notBuilt = udpLossy.notBuilt = true;
    const linkLabel = `${LINK_MBIT} Mbit/s, ${ONE_WAY_MS} ms one-way`;
    const linkCell = `${fmtRate(LINK_MIBPS)} (link rate)`;
    const c = clean.relay.counters;
    const l = lossy.counters;
    rows.push({
      label: `3a. relay ${linkLabel}, 0 % loss, ${LINK_FILE / MiB} MiB: UDP get vs link rate`,
      ours: udpClean.cell(LINK_FILE),
      baseline: linkCell,
      ratio: ratio(udpClean.rate(LINK_FILE), LINK_MIBPS),
      notes: `${udpClean.runs()}${udpClean.range(LINK_FILE)}${udpClean.inner(LINK_FILE)}; relay queue drops ${c.toClient.queueDrops} data-direction, ${c.toTarget.queueDrops} ack-direction`,
    });
    rows.push({
      label: `3b. relay ${linkLabel}, 1 % loss each way, ${LINK_FILE / MiB} MiB: UDP get vs link rate`,
      ours: udpLossy.cell(LINK_FILE),
      baseline: linkCell,
      ratio: ratio(udpLossy.rate(LINK_FILE), LINK_MIBPS),
      notes: `${udpLossy.runs()}${udpLossy.range(LINK_FILE)}${udpLossy.inner(LINK_FILE)}; relay dropped ${l.toClient.lost}/${l.toClient.received} data-direction and ${l.toTarget.lost}/${l.toTarget.received} ack-direction datagrams at random, queue drops ${l.toClient.queueDrops}`,
    });
    rows.push({
      label: `4. TCP proxy ${linkLabel}, ${LINK_FILE / MiB} MiB: TCP get vs link rate`,
      ours: tcpLink.cell(LINK_FILE),
      baseline: linkCell,
      ratio: ratio(tcpLink.rate(LINK_FILE), LINK_MIBPS),
      notes: `${tcpLink.runs()}${tcpLink.range(LINK_FILE)}${tcpLink.inner(LINK_FILE)}; the proxy splits the TCP connection and never drops a byte: this TCP sees NO loss`,
    });

    // Rows 9a-9b: path MTU discovery, and UDP gets at the size it found (bench/pmtu.ts).
    if (udpBuilt) rows.push(...(await pathMtuRows({ registryUrl: setup.registryUrl, share, file: 'link.bin', bytes: LINK_FILE, dir, log })));
    // Rows 10a-10h: a 1 Gbit/s, 5 ms, 1 % loss link, and where the CPU goes (bench/gbit.ts).
    if (udpBuilt && GBIT_FILE_BYTES > 0) {
      await randomFile(join(share, 'gbit.bin'), GBIT_FILE_BYTES);
      rows.push(...(await gbitRows({ registryUrl: setup.registryUrl, share, file: 'gbit.bin', bytes: GBIT_FILE_BYTES, dir, log })));
    }

    const ms = (s: Series) => (s.seconds.length ? `${(median(s.seconds) * 1000).toFixed(1)} ms` : s.cell(jpegBytes));
    rows.push({
      label: `5. seed's case: 1920×1080 JPEG (${(jpegBytes / 1024).toFixed(0)} KiB, q90) on loopback: UDP get vs TCP get`,
      ours: jpegUdp.seconds.length ? `${ms(jpegUdp)} (${fmtRate(jpegUdp.rate(jpegBytes))})` : jpegUdp.cell(jpegBytes),
      baseline: `${ms(jpegTcp)} (${fmtRate(jpegTcp.rate(jpegBytes))})`,
      ratio: ratio(jpegUdp.rate(jpegBytes), jpegTcp.rate(jpegBytes)),
      notes: `in-process fetchFile (lookup, list, request, transfer, SHA-256, rename), median of ${JPEG_RUNS}`,
    });
    // Rows 7a-7d: start-up, and whole-process gets of the JPEG (bench/startup.ts).
    rows.push(...(await startupRows(log)));
    // Rows 6a and 6b: across NAT routers in network namespaces (root only; otherwise they say why not).
    rows.push(...(await natRows(LINK_FILE, ROUNDS, log)));
    // Rows 8a and 8b: many small files in one get (bench/many-files.ts).
    rows.push(...(await manyFilesRows(log)));
    footnotes.push(
      `Rows 6a–6b: real NAT routers (nftables masquerade, network namespaces) on unlimited veth links; each get is a process started with ip netns exec and timed to its exit, beside the same requester's get from an owner with a public address (the direct path), median of ${ROUNDS} alternating rounds after one warm-up each; the registry's relay ran with its per-session cap raised (default 8 MiB/s per session).`,
    );
    footnotes.push(
      `Rows 1–4: \`p2pshare get --json\` processes timed from spawn to exit (Node start-up, registry lookup, file list, request, transfer, whole-file SHA-256 check, rename); the bare TCP client is timed the same way. Median of ${LOOP_ROUNDS} (loopback) or ${ROUNDS} (link) alternating rounds, loopback pairs after one unmeasured warm-up of each side; the range is the slowest–fastest run. Ratio = ours / baseline (higher is better; 1.00 = as fast as the baseline).`,
      `Link rate ${fmtRate(LINK_MIBPS)} = ${LINK_MBIT} Mbit/s of UDP payload (the relay counts datagram bytes, our frame headers included) or of TCP stream bytes (the proxy).`,
      `Rows 10a–10d: whole \`get\` processes as rows 1–4, median of ${process.env.BENCH_GBIT_ROUNDS ?? 3} alternating rounds after one warm-up; link rate 119.2 MiB/s = 1 Gbit/s. CPU: the owner's from /proc/PID/stat, the get's as this process's reaped-children time (cutime+cstime), the relay's or proxy's as this process's own (process.cpuUsage; it also holds the idle registry); "% of a core" is CPU time / the get's wall time. No kernel delay is possible here (no netem, no fq), so the relay and proxy of 10a–10d are user-space Node on the same two cores as both peers; 10f–10g emulate rate and loss in the kernel (tbf, nftables) between two namespaces, without delay.`,
    );
  } finally {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
    await cleanup();
  }

  console.log(`\n${machineLine()}\n${revisionLine()}`);
  console.log(`load average (1/5/15 min) at start ${loadBefore}, at end ${loadLine()}\n`);
  console.log(markdownTable(['case', 'ours', 'baseline', 'ratio', 'notes'], rows.map((r) => [r.label, r.ours, r.baseline, r.ratio, r.notes]), [1, 2, 3]));
  console.log('');
  for (const f of footnotes) console.log(`- ${f}`);
  console.log(`\nbench took ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

function log(line: string): void {
  process.stderr.write(`# ${line}\n`);
}

main().then(
  () => process.exit(0), // an in-process get that timed out may still hold a socket
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
