// What the wire says about a shared file besides its bytes (PROTOCOL.md 4.2, 4.3): which names
// may be shared and asked for, and the kind a LIST entry carries.
import { extname } from 'node:path';

export type FileKind = 'text' | 'image' | 'other';

/** Names longer than this (UTF-8 bytes) are not shared: one list entry must fit a datagram. */
export const MAX_SHARED_NAME_BYTES = 1024;

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.gif', '.webp', '.bmp']);
const TEXT_EXTENSIONS = new Set(['.txt', '.md', '.csv', '.json', '.log', '.xml', '.yaml', '.yml', '.toml', '.ini', '.html', '.css', '.js', '.ts', '.py', '.sh', '.c', '.h', '.rs', '.go', '.java', '.tsv']);

export function kindOf(name: string): FileKind {
  const ext = extname(name).toLowerCase();
  if (IMAGE_EXTENSIONS.has(ext)) return 'image';
  if (TEXT_EXTENSIONS.has(ext)) return 'text';
  return 'other';
}

/** A name a requester may ask for: relative, '/'-separated, no '.'/'..' segments, NUL or backslash. */
export function isValidSharedName(name: string): boolean {
  if (name.length === 0 || Buffer.byteLength(name) > MAX_SHARED_NAME_BYTES) return false;
  if (name.includes('\0') || name.includes('\\') || name.startsWith('/')) return false;
  return name.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}
