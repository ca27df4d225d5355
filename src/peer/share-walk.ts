// Finding what --share names: the visible regular files of folders (recursively when asked),
// never following a link out of the folder, with the size and modification time one stat gives.
// No file is read here: hashing comes later, in the background (share.ts).
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';

export interface Candidate {
  /** The name it is shared under: '/'-separated, relative. */
  name: string;
  /** A real path (no link on the way): lookups serve it only while it still resolves to itself. */
  path: string;
  size: number;
  mtimeMs: number;
}

/** Stats issued at once within one folder: a walk of 100,000 files waits on the disk less. */
const STAT_BATCH = 64;

/**
 * The candidates for --share `paths` (files or folders), or the visible files directly in `cwd`
 * without any; stops early once more than `max` are found. Links followed out of a folder and
 * entries that vanish are put in `skipped`.
 */
export async function walkShares(paths: string[], cwd: string, max: number, skipped: string[]): Promise<Candidate[]> {
  const out: Candidate[] = [];
  if (paths.length === 0) {
    await collectFolder(cwd, '', out, skipped, false, max);
    return out;
  }
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
      await collectFolder(root, basename(root), out, skipped, true, max);
    } else if (st.isFile()) {
      out.push({ name: basename(abs), path: await realpath(abs), size: st.size, mtimeMs: st.mtimeMs });
    } else {
      throw new Error(`--share ${p}: not a regular file or folder`);
    }
    if (out.length > max) break;
  }
  return out;
}

/**
 * Collects visible regular files of `dir` (recursively when asked), never following a link that
 * leads outside `dir`'s tree; `prefix` is the shared-name prefix.
 */
async function collectFolder(dir: string, prefix: string, out: Candidate[], skipped: string[], recursive: boolean, max: number, root = dir): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (let i = 0; i < entries.length; i += STAT_BATCH) {
    const batch = entries.slice(i, i + STAT_BATCH);
    const found = await Promise.all(batch.map((e) => inspect(dir, e, skipped, root)));
    for (let k = 0; k < batch.length; k++) {
      const f = found[k];
      if (!f) continue;
      const name = prefix ? `${prefix}/${batch[k]!.name}` : batch[k]!.name;
      if (f.st.isFile()) out.push({ name, path: f.target, size: f.st.size, mtimeMs: f.st.mtimeMs });
      else if (f.st.isDirectory() && recursive && !batch[k]!.isSymbolicLink()) await collectFolder(f.target, name, out, skipped, true, max, root);
      if (out.length > max) return;
    }
  }
}

/** The entry's target (a link resolved, when it stays inside `root`) and its stat; undefined to skip it. */
async function inspect(dir: string, e: { name: string; isSymbolicLink(): boolean }, skipped: string[], root: string) {
  const path = join(dir, e.name);
  let target = path;
  if (e.isSymbolicLink()) {
    try {
      target = await realpath(path);
    } catch {
      skipped.push(path);
      return undefined;
    }
    const rel = relative(root, target);
    if (rel.startsWith('..') || rel.startsWith(sep) || rel === '') {
      skipped.push(path); // a link out of the shared folder is never followed
      return undefined;
    }
  }
  const st = await lstat(target).catch(() => undefined);
  return st ? { target, st } : undefined;
}
