// Where the CPU goes during a benchmark row, read from Linux's /proc: the CPU time of a process
// (and of the children it has reaped), the datagrams the kernel dropped at a process's UDP
// sockets for want of receive buffer, and the top self-time functions of a V8 CPU profile
// (`node --cpu-prof`). Linux only; elsewhere the readers return undefined.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';

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
