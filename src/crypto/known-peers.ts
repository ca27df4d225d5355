// known_peers, beside the identity file (like ssh's known_hosts): the key a requester first saw
// for each owner name. One `<name lower-cased> <publicKey base64url>` per line; comments, blank
// lines and lines this version does not understand are kept as they are.
import { readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { decodeKey, encodeKey } from './identity';
import { writePrivateTemp } from './temp-file';

export const KNOWN_PEERS_FILE = 'known_peers';

export function knownPeersPath(identityPath: string): string {
  return join(dirname(identityPath), KNOWN_PEERS_FILE);
}

/** The name and key of an entry line, or undefined for any other line. */
function parseLine(line: string): { name: string; key: Buffer } | undefined {
  const fields = line.trim().split(/\s+/);
  if (fields.length !== 2 || fields[0]!.startsWith('#')) return undefined;
  const key = decodeKey(fields[1]!);
  return key ? { name: fields[0]!.toLowerCase(), key } : undefined;
}

async function readLines(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`cannot read known_peers file ${path}: ${(err as Error).message}`);
  }
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

function keysOf(lines: readonly string[]): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  for (const line of lines) {
    const entry = parseLine(line);
    // The first line for a name counts, as pin() writes only one.
    if (entry && !keys.has(entry.name)) keys.set(entry.name, entry.key);
  }
  return keys;
}

export class KnownPeers {
  private constructor(
    readonly path: string,
    private keys: Map<string, Buffer>,
  ) {}

  /** The file at `path`; no file is an empty list. */
  static async load(path: string): Promise<KnownPeers> {
    return new KnownPeers(path, keysOf(await readLines(path)));
  }

  /** The pinned key of a name (compared lower-cased). */
  get(name: string): Buffer | undefined {
    return this.keys.get(name.toLowerCase());
  }

  /**
   * Pins `publicKey` for `name`, replacing any earlier key. The file is read again first (another
   * process may have pinned meanwhile), then replaced whole through a temp file and rename().
   */
  async pin(name: string, publicKey: Uint8Array): Promise<void> {
    if (!/^[^\s#]\S*$/.test(name)) throw new Error(`cannot pin a key for '${name}': not a peer name`);
    const key = name.toLowerCase();
    const line = `${key} ${encodeKey(publicKey)}`;
    const lines = await readLines(this.path);
    const at = lines.findIndex((l) => parseLine(l)?.name === key);
    const kept = lines.filter((l, i) => i <= at || parseLine(l)?.name !== key);
    if (at < 0) kept.push(line);
    else kept[at] = line;
    await this.replaceFile(`${kept.join('\n')}\n`);
    this.keys = keysOf(kept);
  }

  private async replaceFile(text: string): Promise<void> {
    let temp: string | undefined;
    try {
      temp = await writePrivateTemp(this.path, text);
      await rename(temp, this.path);
    } catch (err) {
      if (temp) await unlink(temp).catch(() => {});
      throw new Error(`cannot write known_peers file ${this.path}: ${(err as Error).message}`);
    }
  }
}
