// The resume record of a UDP receive (PROTOCOL.md section 7, "Resuming a UDP receive"): a small
// file `PART.unordered` beside the partial file, saying how much of it is a hole-free prefix.
// A UDP receive writes chunks out of order, so after a crash the partial file's length says
// nothing; the record says what may be trusted, and under which condition:
//   written: every byte below it had been handed to the kernel (write() returned) before the
//            record said so: it survives the writer's process being killed, not a power cut;
//   synced:  every byte below it had been fsynced first: it survives a power cut too;
//   boot:    the boot the record was written in. Same boot: `written` holds (the page cache
//            survived the crash). Another boot: only `synced`.
// One fixed-size record of ASCII text with a digest, rewritten in place at offset 0: a torn or
// garbled record fails its digest and is trusted for nothing (resume from 0).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { uptime } from 'node:os';

export const RECORD_BYTES = 128;
const MAGIC = 'p2pshare-udp-prefix';
const VERSION = '1';

export interface ResumeRecord {
  written: number;
  synced: number;
  boot: string;
}

/** `PART.unordered`: where the record of the partial file `partPath` lives. */
export function recordPath(partPath: string): string {
  return `${partPath}.unordered`;
}

function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** RECORD_BYTES of text: `MAGIC VERSION written synced boot digest`, padded with spaces, `\n` last. */
export function encodeRecord(r: ResumeRecord): Buffer {
  const body = `${MAGIC} ${VERSION} ${r.written} ${r.synced} ${r.boot}`;
  const line = `${body} ${digestOf(body)}`;
  if (line.length > RECORD_BYTES - 1) throw new Error('resume record too long');
  return Buffer.from(line.padEnd(RECORD_BYTES - 1, ' ') + '\n', 'ascii');
}

/** The record in `buf`, or null when it is not one (empty, torn, garbled, another version). */
export function decodeRecord(buf: Buffer): ResumeRecord | null {
  const fields = buf.toString('latin1').trim().split(' ');
  if (fields.length !== 6 || fields[0] !== MAGIC || fields[1] !== VERSION) return null;
  const [, , w, s, boot, digest] = fields as [string, string, string, string, string, string];
  if (digest !== digestOf(fields.slice(0, 5).join(' '))) return null;
  const written = Number(w);
  const synced = Number(s);
  if (!/^\d+$/.test(w) || !/^\d+$/.test(s) || !Number.isSafeInteger(written) || synced > written) return null;
  return { written, synced, boot };
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
 * How much of the partial file a record vouches for, read in boot `boot`: `written` in the boot
 * it was made in, `synced` after a reboot (or power cut), nothing when there is no valid record.
 */
export function trustedPrefix(r: ResumeRecord | null, boot: string): number {
  if (!r) return 0;
  return sameBoot(r.boot, boot) ? r.written : r.synced;
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
