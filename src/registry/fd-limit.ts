// The process's limit on open files (RLIMIT_NOFILE), which bounds how many connections the
// registry can hold: every socket is a file descriptor. Node has no setrlimit(); on Linux the
// limit is read from /proc/self/limits, and `prlimit` (util-linux), when installed, raises the
// soft limit to the hard one for this very process. Elsewhere the caps assume a conservative
// default.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface FileLimit {
  soft: number;
  hard: number;
}

/** What is assumed where the limit cannot be read (the usual Linux soft default). */
export const ASSUMED_FILE_LIMIT = 1024;
/** Descriptors kept for everything but client connections: stdio, the event loop, Redis, STUN, logs. */
export const RESERVED_FDS = 128;
/** The soft limit is never raised past this (a limit of "unlimited" would otherwise mean anything). */
const RAISE_CEILING = 1 << 20;

function parse(v: string): number {
  return v === 'unlimited' ? Infinity : Number(v);
}

/** The soft and hard RLIMIT_NOFILE of this process, or null where /proc does not tell. */
export function readFileLimit(path = '/proc/self/limits'): FileLimit | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  if (!m) return null;
  const limit = { soft: parse(m[1]!), hard: parse(m[2]!) };
  return Number.isNaN(limit.soft) || Number.isNaN(limit.hard) ? null : limit;
}

/**
 * Raises this process's soft limit to its hard limit with `prlimit --pid`, as a server would with
 * setrlimit() at start. Returns the limit in force afterwards (unchanged when prlimit is missing
 * or refused).
 */
export function raiseFileLimit(): FileLimit | null {
  const before = readFileLimit();
  if (!before || before.soft >= before.hard) return before;
  const target = Math.min(before.hard, RAISE_CEILING);
  if (target <= before.soft) return before;
  spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}:${before.hard === Infinity ? 'unlimited' : before.hard}`], { stdio: 'ignore', timeout: 2000 });
  return readFileLimit() ?? before;
}

/** The most client connections that fit under a soft limit, leaving RESERVED_FDS (and 10 %) free. */
export function connectionCapFor(softLimit: number): number {
  const soft = Number.isFinite(softLimit) ? softLimit : RAISE_CEILING;
  return Math.max(16, Math.floor(Math.min(soft - RESERVED_FDS, soft * 0.9)));
}
