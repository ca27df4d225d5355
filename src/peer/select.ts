// Which of an owner's files a `get PEER NAME...` means, and where each lands under --downloads
// (README "Folders and many files"). Pure: the owner's list in, the picks out.
//
// A NAME is, in this order: a file's exact name (saved under its last segment, as a single
// `get` always did); a folder (`pictures/` or `pictures`: everything under it, saved as
// `pictures/...`, the tree kept from the named folder down); or a glob with `*` (within one
// segment), `**` (any number of segments), `?` and `[...]`, saved relative to the folder the
// glob starts in (`pictures/**/*.png` saves `pictures/2024/a.png` as `2024/a.png`).
import type { ListEntry } from '../wire/control';

export interface Pick {
  entry: ListEntry;
  /** Where it goes, relative to --downloads: '/'-separated, made of the owner's name's segments. */
  saveAs: string;
}

export interface Selection {
  picks: Pick[];
  /** The NAMEs that matched no file. */
  unmatched: string[];
}

const GLOB_CHARS = /[*?[]/;

export function isGlob(pattern: string): boolean {
  return GLOB_CHARS.test(pattern);
}

/**
 * The files `patterns` name, each once (the first pattern naming a file decides where it goes),
 * in the order of the owner's list within each pattern.
 */
export function selectFiles(entries: readonly ListEntry[], patterns: readonly string[]): Selection {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const taken = new Set<string>();
  const picks: Pick[] = [];
  const unmatched: string[] = [];
  for (const pattern of patterns) {
    let matched = 0;
    const add = (entry: ListEntry, saveAs: string) => {
      matched++;
      if (taken.has(entry.name)) return;
      taken.add(entry.name);
      picks.push({ entry, saveAs });
    };
    const exact = byName.get(pattern);
    if (exact) {
      add(exact, lastSegment(pattern));
    } else if (isGlob(pattern)) {
      const re = globToRegExp(pattern);
      const base = globBase(pattern);
      for (const e of entries) if (re.test(e.name)) add(e, e.name.slice(base.length));
    } else {
      const folder = pattern.replace(/\/+$/, '');
      if (folder !== '') {
        const prefix = `${folder}/`;
        const keep = folder.length - lastSegment(folder).length; // the named folder's own name stays
        for (const e of entries) if (e.name.startsWith(prefix)) add(e, e.name.slice(keep));
      }
    }
    if (matched === 0) unmatched.push(pattern);
  }
  return { picks, unmatched };
}

/** True when the NAMEs can only mean one file, fetched and reported as a single `get` always was. */
export function isSingleFile(entries: readonly ListEntry[], patterns: readonly string[]): boolean {
  return patterns.length === 1 && entries.some((e) => e.name === patterns[0]);
}

function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

/** The glob's leading segments without wildcards, with their '/': what its matches are saved relative to. */
export function globBase(pattern: string): string {
  const segments = pattern.split('/');
  let base = '';
  for (const seg of segments.slice(0, -1)) {
    if (isGlob(seg)) break;
    base += `${seg}/`;
  }
  return base;
}

/**
 * A glob as an anchored regular expression over a whole name: `**` as a whole segment matches
 * zero or more segments, any other `*` stays within one segment, `?` is one character but '/',
 * `[...]` a class (`[!...]` or `[^...]` negated) that never matches '/'.
 */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        const wholeSegment = (i === 0 || pattern[i - 1] === '/') && (i + 2 === pattern.length || pattern[i + 2] === '/');
        i++;
        if (wholeSegment && pattern[i + 1] === '/') {
          re += '(?:[^/]*/)*'; // `**/`: zero or more whole segments
          i++;
        } else {
          re += wholeSegment ? '.*' : '[^/]*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negated = body.startsWith('!') || body.startsWith('^');
      if (negated) body = body.slice(1);
      const escapedBody = body.replace(/[\\\]^]/g, (c) => `\\${c}`);
      re += negated ? `[^/${escapedBody}]` : `(?!/)[${escapedBody}]`;
      i = close;
    } else {
      re += ch.replace(/[.*+?^${}()|[\]\\/]/g, (c) => `\\${c}`);
    }
  }
  return new RegExp(`^${re}$`, 'u');
}
