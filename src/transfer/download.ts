// Where a download lands: a .part file (resumed when it is already there), verified by SHA-256,
// then linked into place under a free name. Never overwrites, never leaves a half file under
// the final name.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readFile, rename, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { formatBytes } from '../core/bytes';
import { P2pError } from '../core/errors';
import { sha256File } from '../core/hash';
import { numberedName, partBase, safeBaseName } from './local-names';
import { bootId, encodeRecord, readRecord, recordPath, trustedPrefix } from './resume-record';

export interface PartFile {
  path: string;
  /** Bytes already there: the transfer resumes from this offset. */
  offset: number;
  /**
   * Says that chunks are about to land out of order (UDP): from now on the resume record beside
   * the .part, kept current by the receiver, says how much of it a later resume may trust.
   */
  markUnordered(): Promise<void>;
  /** Unlocks, and removes the .part unless a later fetch can resume it; true when it stays. Once. */
  release(): Promise<boolean>;
}

/** Room kept free beyond the file itself: file-system blocks and metadata, other writers. */
export const FREE_SPACE_MARGIN_BYTES = 1024 * 1024;

/** The .part a download of `name`/`sha256` in `dir` resumes (see openPart). */
function sharedPart(dir: string, name: string, sha256: string): string {
  return join(dir, `${partBase(name)}.${sha256.slice(0, 12)}.part`);
}

/**
 * Refuses (FAILED) a download that cannot fit: what the .part still lacks of `size`, plus a
 * margin, must be free in `dir` (or, while it does not exist yet, the folder it will be made in).
 * Nothing is created. A file system that cannot tell is not checked.
 */
export async function ensureRoom(dir: string, name: string, size: number, sha256: string): Promise<void> {
  const have = await stat(sharedPart(dir, name, sha256)).then((st) => (st.isFile() && st.size <= size ? st.size : 0), () => 0);
  const missing = have > 0 ? `${formatBytes(size - have)} more (${formatBytes(have)} of ${formatBytes(size)} are there)` : formatBytes(size);
  await ensureFree(dir, size - have + FREE_SPACE_MARGIN_BYTES, (free) => `not enough space in ${dir} for ${name}: it needs ${missing}, and ${formatBytes(free)} are free`);
}

/** As ensureRoom, for `count` files of `bytes` in all (their .part files not counted: an upper bound). */
export async function ensureRoomForSet(dir: string, count: number, bytes: number): Promise<void> {
  await ensureFree(dir, bytes + FREE_SPACE_MARGIN_BYTES, (free) => `not enough space in ${dir} for ${count} files: they need ${formatBytes(bytes)}, and ${formatBytes(free)} are free`);
}

async function ensureFree(dir: string, need: number, refusal: (free: number) => string): Promise<void> {
  let probe = resolve(dir);
  for (;;) {
    try {
      const fs = await statfs(probe);
      const free = fs.bavail * fs.bsize;
      if (need <= free) return;
      throw new P2pError('FAILED', refusal(free));
    } catch (err) {
      if (err instanceof P2pError) throw err;
      const up = dirname(probe);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || up === probe) return;
      probe = up;
    }
  }
}

/**
 * Opens (or creates) the .part file for `name`/`sha256` in `dir`. The .part name carries the
 * digest so a resumed download can only ever continue the same content. A lock file keeps two
 * concurrent downloads of one file apart: the second gets a private .part and starts at 0.
 *
 * The resume offset is the .part's length, unless a UDP receive left its resume record beside
 * it (PROTOCOL.md section 7): chunks landed out of order, so the .part may hold holes, and only
 * the prefix the record vouches for is kept (all of it in the boot the record was written in,
 * the fsynced part after a reboot, nothing if the record is unreadable).
 */
export async function openPart(dir: string, name: string, size: number, sha256: string): Promise<PartFile> {
  await mkdir(dir, { recursive: true });
  const base = partBase(name);
  const shared = sharedPart(dir, name, sha256);
  const lock = `${shared}.lock`;
  let path = shared;
  let lockHeld = false;
  if (await takeLock(lock)) lockHeld = true;
  else path = join(dir, `${base}.${sha256.slice(0, 12)}.${randomBytes(4).toString('hex')}.part`);
  const unordered = recordPath(path);
  let offset: number;
  let synced: number; // what of the prefix is known to be on disk, carried into the next record
  const fh = await openPartFile(path);
  try {
    offset = (await fh.stat()).size;
    if (offset > size) offset = 0;
    const record = await readRecord(unordered);
    synced = offset;
    if (record !== undefined) {
      offset = Math.min(offset, await trustedPrefix(path, record, await bootId()));
      synced = Math.min(record?.synced ?? 0, offset);
    }
    await fh.truncate(offset);
    // Whatever comes next (TCP appends in order) must not be judged by this record.
    await unlink(unordered).catch(() => {});
  } finally {
    await fh.close();
  }
  let released: Promise<boolean> | undefined;
  return {
    path,
    offset,
    markUnordered: async () => {
      // Written aside and renamed: a crash leaves no record (the .part is still exactly `offset`
      // long, trusted as it is) or a whole one, never an empty one that would throw it all away.
      const record = encodeRecord({ written: offset, synced, boot: await bootId() });
      const fh = await open(`${unordered}.new`, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
      try {
        await fh.write(record, 0, record.length, 0);
      } finally {
        await fh.close();
      }
      await rename(`${unordered}.new`, unordered);
    },
    release: () => (released ??= (async () => {
      // A private .part is never resumed; an empty one has nothing to resume (the fetch was
      // refused or failed before the first byte) and would only litter the downloads folder.
      const size = await stat(path).then((st) => st.size, () => 0);
      const kept = path === shared && size > 0;
      // A kept .part keeps a resume record that does not vouch for all of it on disk: after a
      // power cut only the fsynced part holds. One that does (a receive that ended cleanly) goes.
      const record = kept ? await readRecord(unordered) : undefined;
      if (!record || record.synced >= size) await unlink(unordered).catch(() => {});
      if (!kept) await unlink(path).catch(() => {});
      if (lockHeld) await unlink(lock).catch(() => {});
      return kept;
    })()),
  };
}

/**
 * Opens (creating) the .part as a regular file of ours. A link found under its name is removed,
 * never followed: the resume logic would otherwise truncate and overwrite whatever it points at,
 * and the finished download would be that link. O_NONBLOCK: a FIFO there fails instead of hanging.
 */
async function openPartFile(path: string): Promise<FileHandle> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  let fh: FileHandle;
  try {
    fh = await open(path, flags, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOOP') throw err;
    await unlink(path);
    fh = await open(path, flags | constants.O_EXCL, 0o644);
  }
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    throw new Error(`${path} is not a regular file`);
  }
  return fh;
}

/**
 * Creates `lock` holding our PID; a lock left by a process that is gone is taken over. Only the
 * holder of `lock.takeover` may remove a stale lock: two requesters that both read the dead PID
 * and then removed and re-created the lock could otherwise both end up holding it (the second
 * removing the first one's fresh lock), two writers on one .part.
 */
async function takeLock(lock: string): Promise<boolean> {
  if (await createLock(lock)) return true;
  const takeover = `${lock}.takeover`;
  if (!(await createLock(takeover))) {
    // Left by a process that died inside the few milliseconds it holds it: clear and try later.
    const age = await stat(takeover).then((st) => Date.now() - st.mtimeMs, () => 0);
    if (age > STALE_TAKEOVER_MS) await unlink(takeover).catch(() => {});
    return false;
  }
  try {
    const raw = await readFile(lock, 'utf8').catch(() => '');
    const pid = Number(raw);
    // Empty: its owner is between creating and writing it. Otherwise: held while the PID lives.
    if (raw === '' || !Number.isInteger(pid) || pid <= 0 || isAlive(pid)) return false;
    await unlink(lock).catch(() => {});
    return await createLock(lock); // false if a fresh requester created it meanwhile: theirs
  } finally {
    await unlink(takeover).catch(() => {});
  }
}

const STALE_TAKEOVER_MS = 10_000;

/** Creates `path` exclusively, holding our PID; false when it exists. */
async function createLock(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await fh.writeFile(String(process.pid));
  } finally {
    await fh.close();
  }
  return true;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Checks the .part against the owner's digest: the digest of its bytes as they were written when
 * the caller has it (`written`), else by reading the whole file. On a mismatch the .part is deleted.
 */
export async function verifyPart(partPath: string, sha256: string, written?: string): Promise<boolean> {
  const actual = written ?? (await sha256File(partPath));
  if (actual === sha256) return true;
  await unlink(partPath).catch(() => {});
  return false;
}

/** Links the verified .part to `name`, `name (1).ext`, ... whichever is free; removes the .part. */
export async function finish(partPath: string, dir: string, name: string): Promise<string> {
  // On disk before it gets its final name: after a power cut, a name linked to pages still in
  // the cache can come back as an empty or partly written file (the UDP receiver syncs too).
  const fh = await open(partPath, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  return linkFree(partPath, dir, name);
}

/** Links `partPath` to `name`, `name (1).ext`, ... whichever is free, and removes it. */
async function linkFree(partPath: string, dir: string, name: string): Promise<string> {
  const base = safeBaseName(name);
  for (let i = 0; i < 10_000; i++) {
    const candidate = join(dir, numberedName(base, i));
    try {
      await link(partPath, candidate); // fails with EEXIST instead of overwriting
      await unlink(partPath);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new Error(`no free file name for ${base} in ${dir}`);
}

/**
 * Saves a small file that arrived whole and verified (a batch, PROTOCOL.md 5.1) as finish() does
 * a download: into its .part, synced, then linked under a free name. The .part is created
 * exclusively and no lock is taken: when it exists (another download of the file is writing it,
 * or a run that was killed left it), 'taken' is returned and nothing is touched; the caller then
 * fetches the file alone, which takes the lock and resumes that .part. `dir` must exist.
 */
export async function saveWhole(dir: string, name: string, sha256: string, data: readonly Buffer[]): Promise<string | 'taken'> {
  const part = sharedPart(dir, name, sha256);
  let fh: FileHandle;
  try {
    fh = await open(part, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return 'taken';
    throw err;
  }
  try {
    const size = data.reduce((n, b) => n + b.length, 0);
    if (size > 0 && (await fh.writev(data as Buffer[], 0)).bytesWritten !== size) throw new Error(`cannot write ${part}: short write`);
    // On disk before it gets its name (as finish() does): data only, the size with it.
    await fh.datasync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(part).catch(() => {});
    throw err;
  }
  await fh.close();
  return linkFree(part, dir, name);
}
