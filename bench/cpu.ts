// Where the time goes during a benchmark row, read from Linux's /proc: the CPU time of a process
// (and of the children it has reaped), the datagrams the kernel dropped at a process's UDP
// sockets for want of receive buffer, the top self-time functions of a V8 CPU profile
// (`node --cpu-prof`), and what a UDP sender's rate model estimated (its P2PSHARE_UDP_DEBUG
// lines). Linux only; elsewhere the readers return undefined.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { median, MiB } from './util';

let tickSeconds: number | undefined;
function tick(): number {
  if (tickSeconds === undefined) {
    let hz = 100;
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      // no getconf: Linux's USER_HZ is 100 everywhere it runs
    }
    tickSeconds = 1 / hz;
  }
  return tickSeconds;
}

export interface ProcCpu {
  /** user + system CPU seconds of the process itself. */
  self: number;
  /** user + system CPU seconds of its children that it has waited for (exited and reaped). */
  children: number;
}

/** The CPU time of `pid` ('self': this process) from /proc/PID/stat, in seconds (10 ms steps). */
export function procCpu(pid: number | 'self'): ProcCpu | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": the comm may hold spaces and parentheses, so split after its last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    // f[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17.
    return { self: (f[11]! + f[12]!) * tick(), children: (f[13]! + f[14]!) * tick() };
  } catch {
    return undefined;
  }
}

/**
 * Seconds `pid`'s main thread has spent runnable but waiting for a CPU (/proc/PID/schedstat, the
 * second field: run-queue delay in ns). For an event loop, that wait is latency added to whatever
 * it was about to answer.
 */
export function runQueueWait(pid: number): number | undefined {
  try {
    const wait = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]);
    return Number.isFinite(wait) ? wait / 1e9 : undefined;
  } catch {
    return undefined;
  }
}

/** Datagrams dropped at `pid`'s UDP sockets (the "drops" column of /proc/net/udp), summed. */
export function udpSocketDrops(pid: number | 'self'): number | undefined {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed while we looked
      }
    }
    let drops = 0;
    for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length >= 13 && inodes.has(cols[9]!)) drops += Number(cols[cols.length - 1]);
      }
    }
    return drops;
  } catch {
    return undefined;
  }
}

/** UDP datagrams dropped for a full receive buffer in this network namespace (/proc/net/snmp RcvbufErrors). */
export function udpRcvbufErrors(): number | undefined {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/);
    const v = Number(values[names.indexOf('RcvbufErrors')]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Busy and total CPU seconds of the whole machine, all cores, since boot (/proc/stat; iowait counts as idle). */
export function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: (total - f[3]! - f[4]!) * tick(), total: total * tick() };
  } catch {
    return undefined;
  }
}

export interface ProfileSummary {
  /** Sampled milliseconds in all. */
  totalMs: number;
  /** Share of the samples where the thread waited for events ("(idle)"). */
  idlePercent: number;
  /** The functions with the most self time (idle left out), "name file:line". */
  top: Array<{ name: string; ms: number; percent: number }>;
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** The `n` functions with the most self time in a .cpuprofile (as `node --cpu-prof` writes). */
export function summariseProfile(path: string, n = 8): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const keyOf = new Map<number, string>();
  for (const node of p.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    keyOf.set(node.id, url ? `${name} ${basename(url)}:${lineNumber + 1}` : name);
  }
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  p.samples.forEach((id, i) => {
    const us = Math.max(0, p.timeDeltas[i] ?? 0);
    const key = keyOf.get(id) ?? '?';
    selfUs.set(key, (selfUs.get(key) ?? 0) + us);
    totalUs += us;
  });
  const pct = (us: number) => (totalUs > 0 ? (100 * us) / totalUs : 0);
  const top = [...selfUs.entries()]
    .filter(([k]) => k !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000, percent: pct(us) }));
  return { totalMs: totalUs / 1000, idlePercent: pct(selfUs.get('(idle)') ?? 0), top };
}

/** CPU seconds of the three parties of one run, and how long it took. */
export interface CpuSplit {
  owner: number;
  requester: number;
  relay: number;
  wall: number;
}

/** One measured run: the CPU split and what the relay and the kernel dropped meanwhile. */
export interface Measured {
  cpu: CpuSplit;
  relayDrops: number;
  ownerDrops: number;
  machineDrops: number;
  loopDelayP99Ms: number;
  /** Share of the machine's cores busy during the run (ours and everyone else's), 0-1. */
  machineBusy: number;
}

/**
 * Runs `run` (a get or a blast whose processes this process waits for) and reads who used the
 * CPU meanwhile: `ownerPid` from /proc, the reaped children (the get) from this process's
 * cutime/cstime, the relay as this process's own time (it also hosts the registry, idle here).
 */
export async function measure<T extends { seconds: number }>(ownerPid: number | undefined, run: () => Promise<T>): Promise<{ result: T; m: Measured }> {
  const owner0 = ownerPid ? procCpu(ownerPid) : undefined;
  const self0 = procCpu('self');
  const relay0 = process.cpuUsage();
  const drops0 = { relay: udpSocketDrops('self') ?? 0, owner: ownerPid ? (udpSocketDrops(ownerPid) ?? 0) : 0, machine: udpRcvbufErrors() ?? 0 };
  const machine0 = machineCpu();
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const result = await run();
  loop.disable();
  const relay = process.cpuUsage(relay0);
  const self1 = procCpu('self');
  const owner1 = ownerPid ? procCpu(ownerPid) : undefined;
  const machine1 = machineCpu();
  return {
    result,
    m: {
      cpu: {
        owner: owner0 && owner1 ? owner1.self - owner0.self : NaN,
        requester: self0 && self1 ? self1.children - self0.children : NaN,
        relay: (relay.user + relay.system) / 1e6,
        wall: result.seconds,
      },
      relayDrops: (udpSocketDrops('self') ?? 0) - drops0.relay,
      ownerDrops: ownerPid ? (udpSocketDrops(ownerPid) ?? 0) - drops0.owner : 0,
      machineDrops: (udpRcvbufErrors() ?? 0) - drops0.machine,
      loopDelayP99Ms: loop.percentile(99) / 1e6,
      machineBusy: machine0 && machine1 && machine1.total > machine0.total ? (machine1.busy - machine0.busy) / (machine1.total - machine0.total) : NaN,
    },
  };
}

export type Party = 'owner' | 'requester' | 'relay';

/** "owner 4.1 ms/MiB (52 % of a core), ..." for the parties named, from the median over the runs. */
/**
 * "owner 4.1 ms/MiB (52 % of a core; a whole core: ≤ 244 MiB/s), ..." for the parties named, median
 * over the runs. The last figure is what that process could carry at this cost with a core to
 * itself: the rate the CPU alone would cap it at, whatever the link and the rate control do.
 */
export function describeCpu(ms: Measured[], bytes: number, names: Partial<Record<Party, string>>, what = 'of the file'): string {
  const mib = bytes / MiB;
  const med = (f: (c: CpuSplit) => number) => median(ms.map((m) => f(m.cpu)));
  const parts = (Object.entries(names) as Array<[Party, string]>).map(([p, name]) => {
    const msPerMib = (1000 * med((c) => c[p])) / mib;
    return `${name} ${msPerMib.toFixed(1)} ms/MiB (${(100 * med((c) => c[p] / c.wall)).toFixed(0)} % of a core; a whole core: ≤ ${(1000 / msPerMib).toFixed(0)} MiB/s)`;
  });
  return `CPU per MiB ${what}, median: ${parts.join(', ')}`;
}

export function describeDrops(ms: Measured[]): string {
  const sum = (f: (m: Measured) => number) => ms.reduce((a, m) => a + f(m), 0);
  const relay = sum((m) => m.relayDrops);
  const owner = sum((m) => m.ownerDrops);
  const machine = sum((m) => m.machineDrops);
  return `receive-buffer drops over the runs: relay's sockets ${relay}, owner's ${owner}, the whole machine ${machine} (the rest: the get's socket or other users of loopback); relay event-loop delay p99 ${median(ms.map((m) => m.loopDelayP99Ms)).toFixed(1)} ms`;
}

/**
 * Which of the named processes was busiest, whether together they filled the machine (one core =
 * 100 %), and how busy the whole machine was: when it was full, the rest went to other processes
 * and ours were starved rather than idle.
 */
export function verdict(ms: Measured[], names: Partial<Record<Party, string>>): string {
  const parties = Object.keys(names) as Party[];
  const shares = parties.map((p) => median(ms.map((m) => m.cpu[p] / m.cpu.wall)));
  const busiest = shares.indexOf(Math.max(...shares));
  const total = median(ms.map((m) => parties.reduce((a, p) => a + m.cpu[p], 0) / m.cpu.wall));
  const machine = median(ms.map((m) => m.machineBusy));
  const top = `${names[parties[busiest]!]} busiest (${(100 * shares[busiest]!).toFixed(0)} % of a core)`;
  const these = `the ${parties.length === 3 ? 'three' : parties.length} processes`;
  const ours = total > 1.7 ? `CPU-bound: ${these} kept ${total.toFixed(2)} of the 2 cores busy, ${top}` : `${top}; ${these} together ${total.toFixed(2)} of the 2 cores`;
  if (!Number.isFinite(machine)) return ours;
  const full = machine > 0.9 && total <= 1.7 ? ', so ours were starved of CPU by other work, not idle' : '';
  return `${ours}; the whole machine ${(100 * machine).toFixed(0)} % busy${full}`;
}

/** What the owner's rate model said during one UDP get (its P2PSHARE_UDP_DEBUG lines, every 200 ms). */
export interface ModelStats {
  bwMedian: number;
  bwPeak: number;
  /** Bandwidth estimate when startup ended (the first line not in startup), MiB/s. */
  startupEnd: number | undefined;
  retransmitted: number;
}

const DEBUG_LINE = /^udp-send \S+ rate=[\d.]+MB\/s bw=([\d.]+) .* retx=(\d+) startup=(true|false)$/;

/** The rate model's lines in `stderr` (the owner's, from where this get began). */
export function modelStats(stderr: string): ModelStats | undefined {
  const lines = stderr.split('\n').flatMap((l) => {
    const m = DEBUG_LINE.exec(l);
    return m ? [{ bw: (Number(m[1]) * 1e6) / MiB, retx: Number(m[2]), startup: m[3] === 'true' }] : [];
  });
  if (lines.length === 0) return undefined;
  const bws = lines.map((l) => l.bw);
  return { bwMedian: median(bws), bwPeak: Math.max(...bws), startupEnd: lines.find((l) => !l.startup)?.bw, retransmitted: lines[lines.length - 1]!.retx };
}

export function describeModel(stats: Array<ModelStats | undefined>): string {
  const s = stats.filter((x): x is ModelStats => x !== undefined);
  if (s.length === 0) return "the owner's rate model said nothing (no P2PSHARE_UDP_DEBUG lines)";
  const ends = s.flatMap((x) => (x.startupEnd !== undefined ? [x.startupEnd] : []));
  return (
    `owner's rate model (P2PSHARE_UDP_DEBUG every 200 ms), median over the runs: bandwidth estimate ${median(s.map((x) => x.bwMedian)).toFixed(1)} MiB/s (peak ${median(s.map((x) => x.bwPeak)).toFixed(1)}), ` +
    `startup ended at ${ends.length ? `${median(ends).toFixed(1)} MiB/s` : '— (never within a line)'}, ${median(s.map((x) => x.retransmitted))} chunks retransmitted per get`
  );
}
