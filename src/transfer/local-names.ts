// The names a download takes on this machine's disk: the owner's name is someone else's text, so
// a name that could act on a terminal or a script, or that no file system takes, is refused
// before anything touches the disk, and the names made from it (.part, lock, "name (1).ext")
// are kept within the 255 bytes a file name may have.
import { basename, extname } from 'node:path';
import { escapeChar, escapeUnsafe, firstUnsafeChar } from '../core/unsafe-text';

/** The longest file name (one path segment) in bytes of UTF-8: NAME_MAX on Linux and the BSDs. */
export const MAX_NAME_BYTES = 255;
/**
 * The longest suffix a .part's companions add to its base: `.<12 hex>.<8 hex>.part.unordered`
 * (37 bytes; `.<12 hex>.part.lock.takeover` is 32).
 */
const PART_SUFFIX_BYTES = 37;

/**
 * Why a shared name cannot be saved here ("its name contains …"), or undefined when it can: a
 * segment holding a control or bidirectional control character, or longer than 255 bytes.
 */
export function unusableName(name: string): string | undefined {
  const unsafe = firstUnsafeChar(name);
  if (unsafe !== undefined) {
    const bidi = unsafe.codePointAt(0)! >= 0xa0;
    return bidi
      ? `its name contains a bidirectional control character (${escapeChar(unsafe)}), which can make a name read reversed`
      : `its name contains a control character (${escapeChar(unsafe)})`;
  }
  for (const segment of name.split('/')) {
    const bytes = Buffer.byteLength(segment);
    if (bytes > MAX_NAME_BYTES) return `its name has a part of ${bytes} bytes, more than the ${MAX_NAME_BYTES} a file name may have`;
  }
  return undefined;
}

/** `name` escaped and cut to about `max` characters, for a message. */
export function shownName(name: string, max = 60): string {
  const shown = escapeUnsafe(name);
  return shown.length <= max ? shown : `${shown.slice(0, max - 1)}…`;
}

/** The last path segment of a shared name, made safe as a local file name. */
export function safeBaseName(name: string): string {
  const b = basename(name.replaceAll('\\', '/')).replace(/[\0/]/g, '_');
  return b === '' || b === '.' || b === '..' ? 'download' : b;
}

/** The base of a .part's name: short enough that every companion file's name fits 255 bytes. */
export function partBase(name: string): string {
  return clipBytes(safeBaseName(name), MAX_NAME_BYTES - PART_SUFFIX_BYTES);
}

/** `base`, or `stem (n).ext` for n > 0, cut to fit 255 bytes (the stem gives way first). */
export function numberedName(base: string, n: number): string {
  let ext = extname(base);
  if (Buffer.byteLength(ext) > MAX_NAME_BYTES / 2) ext = ''; // no real extension: one long stem
  const stem = base.slice(0, base.length - ext.length);
  const suffix = `${n === 0 ? '' : ` (${n})`}${ext}`;
  return clipBytes(stem, MAX_NAME_BYTES - Buffer.byteLength(suffix)) + suffix;
}

/** The longest start of `text` of at most `max` bytes of UTF-8 (never half a character). */
export function clipBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > max) break;
    out += ch;
    bytes += b;
  }
  return out;
}
