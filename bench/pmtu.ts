// Rows 9a-9b of `npm run bench`: path MTU discovery (PROTOCOL.md 6.10). The size the search
// settles at on loopback and behind the test relay emulating a 1400-byte MTU link, and UDP gets
// at that size beside the bare dgram blast of 1,200-byte datagrams (loopback) and beside the same
// relay emulating a 1280-byte link (where no size above the base fits: 1,200-byte chunks).
//   node build.mjs && node --import tsx bench/pmtu.ts    (these rows alone)
//   BENCH_PMTU_MIB=64 BENCH_PMTU_ROUNDS=3 (defaults; within npm run bench the file of rows 3-4)
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadOrCreateIdentity } from '../src/crypto/identity';
import type { PathMtuState } from '../src/net/path-mtu';
import { openSession } from '../src/peer/session';
import { RegistryClient } from '../src/registry/client';
import { TEST_CONFIG_HOME, tempDir } from '../test/support/cli';
import { randomFile } from '../test/peer/support';
import { UdpRelay } from '../test/support/relay';
import { dgramBlast } from './baseline';
import { cliGet, ownerBehind, startSetup } from './peers';
import { fmtRate, markdownTable, median, MiB, mibPerSecond } from './util';

const FILE_MIB = Number(process.env.BENCH_PMTU_MIB ?? 64);
const ROUNDS = Number(process.env.BENCH_PMTU_ROUNDS ?? 3);
const BLAST_PAYLOAD = 1200;

export interface PathMtuRow {
  label: string;
  ours: string;
  baseline: string;
  ratio: string;
  notes: string;
}

/** What a requester's session to `peer` discovers (the search run to its end). */
async function discover(registryUrl: string, peer: string): Promise<{ state: PathMtuState; readyMs: number }> {
  const identity = await loadOrCreateIdentity(join(TEST_CONFIG_HOME, 'p2pshare', 'identity'));
  const session = await openSession({ registry: new RegistryClient(registryUrl), identity, peer });
  try {
    const t0 = performance.now();
    await session.pathMtu.ready();
    const readyMs = performance.now() - t0;
    await session.pathMtu.whenDone();
    return { state: session.pathMtu.state(), readyMs };
  } finally {
    await session.close();
  }
}

function describe(d: { state: PathMtuState; readyMs: number }): string {
  const s = d.state;
  return `search: ${s.probes} probes, confirmed ${s.confirmed.join('/') || '—'}, failed ${s.failed.join('/') || '—'}, ended after ${s.elapsedMs.toFixed(0)} ms; a GET would have waited ${d.readyMs.toFixed(1)} ms`;
}

const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '—');

/**
 * The rows, against the owner `owner` of `registryUrl` sharing `share`, whose file `file`
 * (`bytes` long) is fetched; two more owners of the same share are started behind size-capped relays.
 */
export async function pathMtuRows(o: { registryUrl: string; share: string; file: string; bytes: number; dir: string; log: (line: string) => void }): Promise<PathMtuRow[]> {
  const closers: Array<() => Promise<unknown>> = [];
  try {
    const capped = async (name: string, mtu: number) => {
      const owner = await ownerBehind(o.registryUrl, name, o.share, (port) => UdpRelay.start({ target: { address: '127.0.0.1', port }, toTarget: { mtu }, toClient: { mtu } }));
      closers.push(() => owner.close(), () => owner.front.close());
      return owner.front;
    };
    const relay1400 = await capped('mtu-1400', 1400);
    await capped('mtu-1280', 1280);
    const loop = await discover(o.registryUrl, 'owner');
    const probesDropped = relay1400.counters.toTarget.tooBig;
    const at1400 = await discover(o.registryUrl, 'mtu-1400');
    const dropped1400 = relay1400.counters.toTarget.tooBig - probesDropped;
    const at1280 = await discover(o.registryUrl, 'mtu-1280');
    o.log(`path MTU: loopback ${loop.state.datagram}, relay 1400 ${at1400.state.datagram}, relay 1280 ${at1280.state.datagram}`);

    let n = 0;
    const get = async (peer: string) => {
      const r = await cliGet({ registryUrl: o.registryUrl, peer, file: o.file, via: 'udp', downloads: join(o.dir, `pmtu-${n++}`), timeoutMs: 180_000 });
      if (!r.ok) throw new Error(`get from ${peer} failed: ${r.failure}`);
      return mibPerSecond(o.bytes, r.seconds);
    };
    const blast: number[] = [];
    const loopGet: number[] = [];
    const get1400: number[] = [];
    const get1280: number[] = [];
    await get('owner'); // warm-up (page cache, JIT)
    const dataBefore = relay1400.counters.toClient.tooBig;
    for (let r = 0; r < ROUNDS; r++) {
      const b = await dgramBlast(o.bytes, BLAST_PAYLOAD);
      blast.push(mibPerSecond(b.receivedBytes, b.seconds));
      loopGet.push(await get('owner'));
      get1400.push(await get('mtu-1400'));
      get1280.push(await get('mtu-1280'));
      o.log(`path MTU round ${r + 1}: blast ${fmtRate(blast[r]!)}, get loopback ${fmtRate(loopGet[r]!)}, via 1400 relay ${fmtRate(get1400[r]!)}, via 1280 relay ${fmtRate(get1280[r]!)}`);
    }
    const mib = `${(o.bytes / MiB).toFixed(0)} MiB`;
    return [
      {
        label: `9a. path MTU on loopback: discovered ${loop.state.datagram.toLocaleString('en')}-B datagrams (MTU ${(loop.state.datagram + 28).toLocaleString('en')}); UDP get ${mib} at that size vs bare dgram blast (${BLAST_PAYLOAD} B datagrams)`,
        ours: fmtRate(median(loopGet)),
        baseline: fmtRate(median(blast)),
        ratio: ratio(median(loopGet), median(blast)),
        notes: `${describe(loop)}; median of ${ROUNDS} alternating rounds, whole get processes`,
      },
      {
        label: `9b. path MTU behind the test relay emulating a 1400-byte MTU: discovered ${at1400.state.datagram.toLocaleString('en')}-B datagrams; UDP get ${mib} through it vs the same relay at a 1280-byte MTU (discovered ${at1280.state.datagram}: 1,200-B chunks)`,
        ours: fmtRate(median(get1400)),
        baseline: fmtRate(median(get1280)),
        ratio: ratio(median(get1400), median(get1280)),
        notes: `${describe(at1400)}; the relay dropped ${dropped1400} probes as too big, and ${relay1400.counters.toClient.tooBig - dataBefore} datagrams of the gets; 1280 relay: ${describe(at1280)}`,
      },
    ];
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const { dir, cleanup } = await tempDir('p2pshare-bench-pmtu-');
  try {
    const share = join(dir, 'share');
    await mkdir(share, { recursive: true });
    const bytes = FILE_MIB * MiB;
    await randomFile(join(share, 'pmtu.bin'), bytes);
    const setup = await startSetup(share);
    try {
      const rows = await pathMtuRows({ registryUrl: setup.registryUrl, share, file: 'pmtu.bin', bytes, dir, log: (l) => process.stderr.write(`# ${l}\n`) });
      console.log(markdownTable(['case', 'ours', 'baseline', 'ratio', 'notes'], rows.map((r) => [r.label, r.ours, r.baseline, r.ratio, r.notes]), [1, 2, 3]));
    } finally {
      await setup.close();
    }
  } finally {
    await cleanup();
  }
}

if (process.argv[1]?.endsWith('pmtu.ts')) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
