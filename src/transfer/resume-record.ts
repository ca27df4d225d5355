// The resume record of a UDP receive (PROTOCOL.md section 7, "Resuming a UDP receive"): a small
// file `PART.unordered` beside the partial file, saying how much of it is a hole-free prefix.
// A UDP receive writes chunks out of order, so after a crash the partial file's length says
// nothing; the record says what may be trusted, and under which condition:
//   written: every byte below it had been handed to the kernel (write() returned) before the
//            record said so: it survives the writer's process being killed, not a power cut;
//   synced:  every byte below it had been fsynced first: it survives a power cut too;
//   boot:    the boot the record was written in. Same boot: `written` holds (the page cache
//            survived the crash). Another boot: only `synced`;
//   writes:  writes handed to the file system but not known to be done, each with the last
//            bytes it writes: in the same boot, those found in the file extend the prefix (a
//            write whose completion the killed process never saw is not fetched again).
// One fixed-size record of ASCII text with a digest, rewritten in place at offset 0: a torn or
// garbled record fails its digest and is trusted for nothing (resume from 0).
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { uptime } from 'node:os';

export const RECORD_BYTES = 512;
/** Writes a record lists at most (the lowest ones: those next to the prefix). */
export const MAX_RECORD_WRITES = 8;
/** Bytes of a write's end a record keeps to recognise it in the file. */
export const WRITE_TAIL_BYTES = 8;
const MAGIC = 'p2pshare-udp-prefix';
const VERSION = '1';

export interface PendingWrite {
  position: number;
  length: number;
  /** Its last min(WRITE_TAIL_BYTES, length) bytes, hex; never all zero (a hole reads as zeros). */
  tail: string;
}

export interface ResumeRecord {
  written: number;
  synced: number;
  boot: string;
  writes?: PendingWrite[];
}

/** `PART.unordered`: where the record of the partial file `partPath` lives. */
export function recordPath(partPath: string): string {
  return `${partPath}.unordered`;
}

function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/**
 * RECORD_BYTES of text: `MAGIC VERSION written synced boot writes digest`, padded with spaces,
 * `\n` last; writes is `-` or `position+length@tail,...`.
 */
export function encodeRecord(r: ResumeRecord): Buffer {
  const writes = r.writes?.length ? r.writes.map((w) => `${w.position}+${w.length}@${w.tail}`).join(',') : '-';
  const body = `${MAGIC} ${VERSION} ${r.written} ${r.synced} ${r.boot} ${writes}`;
  const line = `${body} ${digestOf(body)}`;
  if (line.length > RECORD_BYTES - 1) throw new Error('resume record too long');
  return Buffer.from(line.padEnd(RECORD_BYTES - 1, ' ') + '\n', 'ascii');
}

/** The record in `buf`, or null when it is not one (empty, torn, garbled, another version). */
export function decodeRecord(buf: Buffer): ResumeRecord | null {
  const fields = buf.toString('latin1').trim().split(' ');
  if (fields.length !== 7 || fields[0] !== MAGIC || fields[1] !== VERSION) return null;
  const [, , w, s, boot, ws, digest] = fields as [string, string, string, string, string, string, string];
  if (digest !== digestOf(fields.slice(0, 6).join(' '))) return null;
  const written = Number(w);
  const synced = Number(s);
  if (!/^\d+$/.test(w) || !/^\d+$/.test(s) || !Number.isSafeInteger(written) || synced > written) return null;
  const writes: PendingWrite[] = [];
  for (const item of ws === '-' ? [] : ws.split(',')) {
    const m = /^(\d+)\+(\d+)@((?:[0-9a-f]{2}){1,8})$/.exec(item);
    if (!m) return null;
    const write = { position: Number(m[1]), length: Number(m[2]), tail: m[3]! };
    if (!Number.isSafeInteger(write.position + write.length) || write.length < write.tail.length / 2) return null;
    writes.push(write);
  }
  return { written, synced, boot, writes };
}

/** The record's entry for a write of `data` at `position`, or undefined when its end is all zero. */
export function pendingWrite(position: number, data: Buffer): PendingWrite | undefined {
  const tail = data.subarray(Math.max(0, data.length - WRITE_TAIL_BYTES));
  if (!tail.some((b) => b !== 0)) return undefined;
  return { position, length: data.length, tail: tail.toString('hex') };
}

/** The record at `path`: undefined when there is no such file, null when it holds no valid record. */
export async function readRecord(path: string): Promise<ResumeRecord | null | undefined> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return null;
  }
  return decodeRecord(buf);
}

/**
 * How much of the partial file at `partPath` a record vouches for, read in boot `boot`: nothing
 * when there is no valid record; `synced` after a reboot (or power cut); in the boot it was made
 * in, `written`, extended by each listed write that starts where the prefix ends and whose last
 * bytes are in the file. Those bytes being there means the whole write is: the region past the
 * resume point was cut off (zeros) before the receive, is written once, and a write reaches the
 * file front to back (a killed process may leave a write cut short, never one with a gap).
 */
export async function trustedPrefix(partPath: string, r: ResumeRecord | null, boot: string): Promise<number> {
  if (!r) return 0;
  if (!sameBoot(r.boot, boot)) return r.synced;
  let trusted = r.written;
  const writes = [...(r.writes ?? [])].sort((a, b) => a.position - b.position);
  if (!writes.some((w) => w.position === trusted)) return trusted;
  const fh = await open(partPath, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  if (!fh) return trusted;
  try {
    for (const w of writes) {
      if (w.position !== trusted) continue;
      const want = Buffer.from(w.tail, 'hex');
      const got = Buffer.alloc(want.length);
      const { bytesRead } = await fh.read(got, 0, got.length, w.position + w.length - want.length);
      if (bytesRead !== want.length || !got.equals(want)) break;
      trusted = w.position + w.length;
    }
  } finally {
    await fh.close();
  }
  return trusted;
}

/** Tolerance of a boot time computed from the uptime (it moves by a second or so between calls). */
const BOOT_TIME_SLACK_S = 5;

function sameBoot(a: string, b: string): boolean {
  if (a === b) return true;
  const t = /^t(\d+)$/;
  const ma = t.exec(a);
  const mb = t.exec(b);
  return !!ma && !!mb && Math.abs(Number(ma[1]) - Number(mb[1])) <= BOOT_TIME_SLACK_S;
}

let boot: Promise<string> | undefined;

/**
 * This boot's identity: Linux's boot_id, else `t` and the boot time in seconds (from the uptime,
 * compared with a few seconds' slack). Never contains a space.
 */
export function bootId(): Promise<string> {
  return (boot ??= readFile('/proc/sys/kernel/random/boot_id', 'ascii').then(
    (id) => {
      const s = id.trim();
      return /^[0-9a-f-]{8,64}$/i.test(s) ? s : bootTime();
    },
    () => bootTime(),
  ));
}

function bootTime(): string {
  return `t${Math.round(Date.now() / 1000 - uptime())}`;
}
