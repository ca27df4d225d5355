// The share list: which files this peer serves, under which names, with size, SHA-256 and kind.
// Only names in this index are ever served; a file changed on disk is re-hashed before serving.
// The list is ready once the folders are walked (stat only); the digests come in the background,
// a few files at a time, and any file asked for before its turn is hashed at once (PROTOCOL.md
// 4.2, "Entries not hashed yet").
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { sha256File } from '../core/hash';
import { imageSizeOfFile } from '../media/image-info';
import { isValidSharedName, kindOf, type FileKind } from '../wire/shared-file';
import { walkShares, type Candidate } from './share-walk';

export interface SharedFile {
  /** The name it is shared and requested under: '/'-separated, relative, no dot segments. */
  name: string;
  path: string;
  size: number;
  mtimeMs: number;
  sha256: string; // hex
  kind: FileKind;
  /** Image dimensions read from the file's header; 0 when not an image or unknown. */
  width: number;
  height: number;
}

/** An entry as listed: hashed, or not yet (`sha256` null, no image dimensions yet). */
export type ListedFile = Omit<SharedFile, 'sha256'> & { sha256: string | null };

/** A share list larger than this is refused at start (bounded memory and list traffic). */
export const MAX_SHARED_FILES = 100_000;
/** Files hashed at once in the background: the disk and a core stay free enough to serve. */
export const BACKGROUND_HASHES = 3;
/** Files hashed at once because someone asked for them (GET, LIST of one name). */
const ON_DEMAND_HASHES = 4;

export class ShareIndex {
  /** Sorted by name (UTF-16 code units), names fixed at start: LIST pages index into it. */
  private readonly sorted: ListedFile[];
  private readonly indexOf = new Map<string, number>();
  /** One hashing per entry however many ask meanwhile (each would read the whole file). */
  private readonly hashing = new Map<number, Promise<SharedFile>>();
  private readonly onDemand = new Lane(ON_DEMAND_HASHES);
  private changes = 0;
  private notHashed: number;
  private failures = 0;
  private bytes = 0;
  private bytesHashed = 0;
  private nextInBackground = 0;
  private closed = false;
  readonly skipped: string[] = [];
  /** Settles once the background hashing is over (every entry hashed or failed once), or closed; at once without background hashing. */
  readonly hashed: Promise<void>;

  private constructor(candidates: Candidate[], skipped: string[], backgroundHashes: number) {
    this.skipped.push(...skipped);
    const seen = new Set<string>();
    const kept: ListedFile[] = [];
    for (const c of candidates) {
      if (!isValidSharedName(c.name) || seen.has(c.name)) {
        this.skipped.push(c.path); // unusable name, or a second --share of a same-named file: first wins
        continue;
      }
      seen.add(c.name);
      kept.push({ ...c, sha256: null, kind: kindOf(c.name), width: 0, height: 0 });
      this.bytes += c.size;
    }
    this.sorted = kept.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.sorted.forEach((f, i) => this.indexOf.set(f.name, i));
    this.notHashed = this.sorted.length;
    // None (tests): every entry waits until it is asked for.
    const workers = Array.from({ length: Math.max(0, backgroundHashes) }, () => this.hashInBackground());
    this.hashed = Promise.all(workers).then(() => {});
  }

  /**
   * Walks --share arguments (files or folders), or the visible files of `cwd`, and returns the
   * index at once, every entry listed, the hashing started in the background.
   */
  static async scan(paths: string[], cwd = process.cwd(), o: { backgroundHashes?: number } = {}): Promise<ShareIndex> {
    const skipped: string[] = [];
    const candidates = await walkShares(paths, cwd, MAX_SHARED_FILES, skipped);
    if (candidates.length > MAX_SHARED_FILES) throw new Error(`too many files to share (more than ${MAX_SHARED_FILES})`);
    return new ShareIndex(candidates, skipped, o.backgroundHashes ?? BACKGROUND_HASHES);
  }

  /** scan(), then waits for every digest: an index whose list holds no entry without one (unless it failed). */
  static async build(paths: string[], cwd = process.cwd()): Promise<ShareIndex> {
    const index = await ShareIndex.scan(paths, cwd);
    await index.hashed;
    return index;
  }

  /** Every entry, sorted by name; those not hashed yet have `sha256` null. Not a copy: do not change it. */
  list(): readonly ListedFile[] {
    return this.sorted;
  }

  /** Grows each time an entry is hashed or re-hashed: views of list() made at another version are stale. */
  get version(): number {
    return this.changes;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  /** Entries without a digest yet (failed ones included until a request hashes them). */
  get pending(): number {
    return this.notHashed;
  }

  /** Entries whose background hashing failed (gone, unreadable, never still). */
  get failed(): number {
    return this.failures;
  }

  /** Bytes hashed so far of the entries that had no digest at start. */
  get hashedBytes(): number {
    return this.bytesHashed;
  }

  /** Stops the background hashing (hashings running finish; requests still hash on demand). */
  close(): void {
    this.closed = true;
  }

  /**
   * The entry for `name` with its digest: hashed first if it had none yet or the file changed on
   * disk since; undefined when not shared or gone. Rejects when the file cannot be hashed.
   */
  async lookup(name: string): Promise<SharedFile | undefined> {
    if (!isValidSharedName(name)) return undefined;
    const i = this.indexOf.get(name);
    if (i === undefined) return undefined;
    const entry = this.sorted[i]!;
    const st = await currentStat(entry);
    if (!st) return undefined;
    if (entry.sha256 === null || st.size !== entry.size || st.mtimeMs !== entry.mtimeMs) return this.hashAt(i, true);
    return entry as SharedFile;
  }

  /**
   * Hashes the entries of list() in [from, to) that have no digest yet, at once rather than in
   * their turn; resolves when they are done, whether each succeeded or not.
   */
  async hashNow(from: number, to: number): Promise<void> {
    const waits: Promise<unknown>[] = [];
    for (let i = Math.max(0, from); i < Math.min(to, this.sorted.length); i++) {
      if (this.sorted[i]!.sha256 === null) waits.push(this.hashAt(i, true).catch(() => {}));
    }
    await Promise.all(waits);
  }

  /** True while `f` is still what was announced: same real path, size and modification time. */
  async isCurrent(f: SharedFile): Promise<boolean> {
    const st = await currentStat(f);
    return st !== undefined && st.size === f.size && st.mtimeMs === f.mtimeMs;
  }

  /** One background worker: takes the next entry without a digest, in list order, until none is left. */
  private async hashInBackground(): Promise<void> {
    while (!this.closed) {
      while (this.nextInBackground < this.sorted.length && (this.sorted[this.nextInBackground]!.sha256 !== null || this.hashing.has(this.nextInBackground))) {
        this.nextInBackground++;
      }
      const i = this.nextInBackground++;
      if (i >= this.sorted.length) return;
      await this.hashAt(i, false).catch(() => {
        this.failures++; // stays listed without a digest; a GET for it tries again (and says why)
      });
    }
  }

  /** Hashes entry `i` (once, however many ask meanwhile) and puts the result in its place. */
  private hashAt(i: number, asked: boolean): Promise<SharedFile> {
    let running = this.hashing.get(i);
    if (!running) {
      const entry = this.sorted[i]!;
      const work = () => describe(entry);
      running = (asked ? this.onDemand.run(work) : work())
        .then((fresh) => {
          const before = this.sorted[i]!;
          this.sorted[i] = fresh;
          this.bytes += fresh.size - before.size;
          if (before.sha256 === null) {
            this.notHashed--;
            this.bytesHashed += fresh.size;
          }
          this.changes++;
          return fresh;
        })
        .finally(() => this.hashing.delete(i));
      this.hashing.set(i, running);
    }
    return running;
  }
}

/** Runs at most `max` tasks at once; the others wait their turn in arrival order. */
class Lane {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes on as it is
      else this.running--;
    }
  }
}

/**
 * The file's stat, or undefined when it is gone, not a regular file, or no longer reached
 * without a link: every indexed path is a real path, so a path that now resolves elsewhere had
 * a file or folder swapped for a link (possibly one leading out of the share).
 */
async function currentStat(f: { path: string }): Promise<Stats | undefined> {
  try {
    if ((await realpath(f.path)) !== f.path) return undefined;
    const st = await stat(f.path);
    return st.isFile() ? st : undefined;
  } catch {
    return undefined;
  }
}

/** Hashing tries: a file still changing after this many is refused (the owner says internal). */
const MAX_HASH_TRIES = 3;

async function describe(c: { name: string; path: string }): Promise<SharedFile> {
  for (let tries = 0; tries < MAX_HASH_TRIES; tries++) {
    const fh = await open(c.path, 'r');
    let before: Stats;
    let sha256: string | null;
    let after: Stats;
    try {
      // One descriptor for the stats and the read: a walk of 100,000 small files is syscalls.
      before = await fh.stat();
      sha256 = before.size <= SMALL_FILE_BYTES ? await sha256Small(fh, before.size) : await sha256File(c.path);
      after = await fh.stat();
    } finally {
      await fh.close();
    }
    // Changed while being hashed: the digest is of neither version; hash again.
    if (sha256 === null || after.size !== before.size || after.mtimeMs !== before.mtimeMs) continue;
    const kind = kindOf(c.name);
    const dims = kind === 'image' ? await imageSizeOfFile(c.path) : null;
    return { name: c.name, path: c.path, size: before.size, mtimeMs: before.mtimeMs, sha256, kind, width: dims?.width ?? 0, height: dims?.height ?? 0 };
  }
  throw new Error(`${c.path} keeps changing while being hashed`);
}

/** Up to this size a file is read in one piece, into a buffer its size (core/hash.ts reads 1 MiB pieces). */
const SMALL_FILE_BYTES = 64 * 1024;

/** SHA-256 of a small open file of `size` bytes; null when it holds another number of bytes now (changed). */
async function sha256Small(fh: FileHandle, size: number): Promise<string | null> {
  const buf = Buffer.allocUnsafe(size + 1);
  let got = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
    if (bytesRead === 0 || got + bytesRead === buf.length) {
      got += bytesRead;
      break;
    }
    got += bytesRead;
  }
  if (got !== size) return null; // one byte more than announced is read to see this
  return createHash('sha256').update(buf.subarray(0, got)).digest('hex');
}
