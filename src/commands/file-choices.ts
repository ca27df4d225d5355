// The interactive peer's list of an owner's files (README "A 60-second tour"): every file and
// every folder one choice, a folder fetching all that is under it as one set.
import type prompts from 'prompts';
import { defaultVia } from '../peer/fetch';
import { formatBytes } from '../ui/format';
import { displayWidth, padToWidth, printable, truncateToWidth } from '../ui/text';
import type { ListEntry } from '../wire/control';

/** A folder of the owner's list: every file under `name` ('pictures/2024/'). */
export interface Folder {
  name: string;
  files: number;
  bytes: number;
}

/** Every folder the names in `entries` pass through, with what is under each. */
export function foldersOf(entries: ListEntry[]): Folder[] {
  const folders = new Map<string, Folder>();
  for (const e of entries) {
    for (let at = e.name.indexOf('/'); at > 0; at = e.name.indexOf('/', at + 1)) {
      const name = e.name.slice(0, at + 1);
      const f = folders.get(name) ?? { name, files: 0, bytes: 0 };
      f.files++;
      f.bytes += e.size;
      folders.set(name, f);
    }
  }
  return [...folders.values()];
}

/**
 * The owner's files and folders, one choice each, sorted by name (a folder just before what is
 * in it): name, size, kind (with an image's dimensions) and how it will travel.
 */
export function fileChoices(entries: ListEntry[]): prompts.Choice[] {
  const rows = [
    ...entries.map((e) => ({ name: e.name, size: e.size, what: e.kind + (e.kind === 'image' && e.width > 0 && e.height > 0 ? ` ${e.width} × ${e.height}` : ''), via: `via ${defaultVia(e).toUpperCase()}` })),
    ...foldersOf(entries).map((f) => ({ name: f.name, size: f.bytes, what: `folder, ${f.files} file${f.files === 1 ? '' : 's'}`, via: '' })),
  ].sort((a, b) => a.name.localeCompare(b.name));
  const shown = (name: string) => truncateToWidth(printable(name), 40);
  const nameWidth = Math.max(...rows.map((r) => displayWidth(shown(r.name))));
  return rows.map((r) => ({
    title: `${padToWidth(shown(r.name), nameWidth)}  ${formatBytes(r.size).padStart(10)}  ${r.what.padEnd(17)} ${r.via}`.trimEnd(),
    value: r.name,
  }));
}

/** Keeps the choices whose name holds `input` (any case), and the special ones always. */
export function filterChoices(input: string, all: prompts.Choice[]): Promise<prompts.Choice[]> {
  return Promise.resolve(all.filter((ch) => String(ch.value).startsWith('\0') || String(ch.value).toLowerCase().includes(input.toLowerCase())));
}
