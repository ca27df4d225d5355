// The share list: which files this peer serves, under which names, with size, SHA-256 and kind.
// Only names in this index are ever served; a file changed on disk is re-hashed before serving.
import type { Stats } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import { sha256File } from '../core/hash';
import { imageSizeOfFile } from '../media/image-info';
import { isValidSharedName, kindOf, type FileKind } from '../wire/shared-file';

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

/** A share list larger than this is refused at start (bounded memory and list traffic). */
export const MAX_SHARED_FILES = 100_000;

interface Candidate {
  name: string;
  path: string;
}

export class ShareIndex {
  private readonly files = new Map<string, SharedFile>();
  private readonly rehashing = new Map<string, Promise<SharedFile>>();
  private changes = 0;
  readonly skipped: string[] = [];

  /** Builds the index from --share arguments (files or folders), or the visible files of `cwd`. */
  static async build(paths: string[], cwd = process.cwd()): Promise<ShareIndex> {
    const index = new ShareIndex();
    const candidates: Candidate[] = [];
    if (paths.length === 0) {
      await collectFolder(cwd, '', candidates, index.skipped, false);
    } else {
      for (const p of paths) {
        const abs = resolve(cwd, p);
        let st;
        try {
          st = await stat(abs);
        } catch {
          throw new Error(`--share ${p}: no such file or folder`);
        }
        if (st.isDirectory()) {
          const root = await realpath(abs);
          await collectFolder(root, basename(root), candidates, index.skipped, true);
        } else if (st.isFile()) {
          // The real path: lookup() serves an entry only while its path still resolves to itself.
          candidates.push({ name: basename(abs), path: await realpath(abs) });
        } else {
          throw new Error(`--share ${p}: not a regular file or folder`);
        }
      }
    }
    if (candidates.length > MAX_SHARED_FILES) throw new Error(`too many files to share (${candidates.length} > ${MAX_SHARED_FILES})`);
    for (const c of candidates) {
      if (!isValidSharedName(c.name)) {
        index.skipped.push(c.path);
        continue;
      }
      if (index.files.has(c.name)) {
        index.skipped.push(c.path); // first one wins; two --share of same-named files
        continue;
      }
      try {
        index.files.set(c.name, await describe(c));
      } catch (err) {
        if (!(err instanceof KeepsChangingError)) throw err;
        index.skipped.push(c.path); // written to all the time (a log): no digest would hold
      }
    }
    return index;
  }

  list(): SharedFile[] {
    return [...this.files.values()];
  }

  /** Grows each time an entry is re-hashed: views of list() built at another version are stale. */
  get version(): number {
    return this.changes;
  }

  get totalBytes(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.size;
    return n;
  }

  /**
   * The entry for `name`, re-hashed first if the file changed on disk since it was indexed;
   * undefined when not shared or gone.
   */
  async lookup(name: string): Promise<SharedFile | undefined> {
    if (!isValidSharedName(name)) return undefined;
    const entry = this.files.get(name);
    if (!entry) return undefined;
    const st = await currentStat(entry);
    if (!st) return undefined;
    if (st.size !== entry.size || st.mtimeMs !== entry.mtimeMs) return this.rehash(entry);
    return entry;
  }

  /** One re-hash per changed file however many requests ask meanwhile (each would read it all). */
  private rehash(entry: SharedFile): Promise<SharedFile> {
    let running = this.rehashing.get(entry.name);
    if (!running) {
      running = describe({ name: entry.name, path: entry.path })
        .then((fresh) => {
          this.files.set(entry.name, fresh);
          this.changes++;
          return fresh;
        })
        .finally(() => this.rehashing.delete(entry.name));
      this.rehashing.set(entry.name, running);
    }
    return running;
  }

  /** True while `f` is still what was announced: same real path, size and modification time. */
  async isCurrent(f: SharedFile): Promise<boolean> {
    const st = await currentStat(f);
    return st !== undefined && st.size === f.size && st.mtimeMs === f.mtimeMs;
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

async function describe(c: Candidate): Promise<SharedFile> {
  for (let tries = 0; tries < MAX_HASH_TRIES; tries++) {
    const before = await stat(c.path);
    const sha256 = await sha256File(c.path);
    const after = await stat(c.path);
    // Changed while being hashed: the digest is of neither version; hash again.
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) continue;
    const kind = kindOf(c.name);
    const dims = kind === 'image' ? await imageSizeOfFile(c.path) : null;
    return { name: c.name, path: c.path, size: before.size, mtimeMs: before.mtimeMs, sha256, kind, width: dims?.width ?? 0, height: dims?.height ?? 0 };
  }
  throw new KeepsChangingError(`${c.path} keeps changing while being hashed`);
}

class KeepsChangingError extends Error {}

/**
 * Collects visible regular files of `dir` (recursively when asked), never following a link that
 * leads outside `dir`'s tree; `prefix` is the shared-name prefix.
 */
async function collectFolder(dir: string, prefix: string, out: Candidate[], skipped: string[], recursive: boolean, root = dir): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const path = join(dir, e.name);
    const name = prefix ? `${prefix}/${e.name}` : e.name;
    let target = path;
    if (e.isSymbolicLink()) {
      try {
        target = await realpath(path);
      } catch {
        skipped.push(path);
        continue;
      }
      const rel = relative(root, target);
      if (rel.startsWith('..') || rel.startsWith(sep) || rel === '') {
        skipped.push(path); // a link out of the shared folder is never followed
        continue;
      }
    }
    const st = await lstat(target).catch(() => undefined);
    if (!st) continue;
    if (st.isFile()) out.push({ name, path: target });
    else if (st.isDirectory() && recursive && !e.isSymbolicLink()) await collectFolder(path, name, out, skipped, true, root);
    if (out.length > MAX_SHARED_FILES) return;
  }
}
