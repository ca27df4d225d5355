// A peer's identity: its static X25519 key pair in a JSON file created on first use, and the
// fingerprint people compare out of band. The file is guarded like an ssh key: 0600 in a 0700
// folder, refused when group or others have any access to it.
import { link, open, unlink } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { PrivateKey, X25519_KEY_BYTES } from '../core/x25519';
import { sha256 } from './primitives';
import { writePrivateTemp } from './temp-file';

export interface Identity {
  path: string;
  privateKey: PrivateKey;
  publicKey: Buffer;
  fingerprint: string;
}

const FILE_TYPE = 'p2pshare-identity';
const FILE_VERSION = 1;
/** A real identity file is ~150 bytes; anything much larger is not one. */
const MAX_FILE_BYTES = 4096;

/** $XDG_CONFIG_HOME/p2pshare/identity, else ~/.config/p2pshare/identity. */
export function defaultIdentityPath(env: Readonly<Record<string, string | undefined>>): string {
  // XDG Base Directory spec: a relative XDG_CONFIG_HOME is invalid and ignored.
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'p2pshare', 'identity');
  const home = env.HOME || env.USERPROFILE;
  if (home) return join(home, '.config', 'p2pshare', 'identity');
  throw new Error('cannot place the identity file: neither XDG_CONFIG_HOME nor HOME is set (use --identity FILE)');
}

/** Keys in text: base64url without padding, 43 characters. */
export function encodeKey(key: Uint8Array): string {
  if (key.length !== X25519_KEY_BYTES) throw new RangeError('a key is 32 bytes');
  return Buffer.from(key).toString('base64url');
}

/** 32 bytes, or null unless `text` is exactly the canonical 43-character base64url of 32 bytes. */
export function decodeKey(text: string): Buffer | null {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) return null;
  const key = Buffer.from(text, 'base64url');
  // The last character carries 2 unused bits: only one spelling per key.
  return key.toString('base64url') === text ? key : null;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lower case, no padding, of the first 15 bytes of SHA-256(key): 24 characters. */
export function fingerprint(publicKey: Uint8Array): string {
  const bytes = sha256(publicKey).subarray(0, 15);
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(value >>> bits) & 31];
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

/** The fingerprint in its canonical form, from any case with '-' and spaces anywhere; null if it is not one. */
export function parseFingerprint(text: string): string | null {
  const compact = text.replace(/[\s-]/g, '').toLowerCase();
  return /^[a-z2-7]{24}$/.test(compact) ? compact : null;
}

/** The identity at `path`, created first if there is no file there. */
export async function loadOrCreateIdentity(path: string): Promise<Identity> {
  return (await readIdentity(path)) ?? (await createIdentity(path));
}

async function readIdentity(path: string): Promise<Identity | undefined> {
  let text: string;
  try {
    const file = await open(path, 'r');
    try {
      const stat = await file.stat();
      if (!stat.isFile()) throw new Error(`identity file ${path} is not a regular file`);
      // Windows has no such mode bits; its ACLs are the user's business.
      if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
        const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
        throw new Error(`identity file ${path} is accessible by others (mode ${mode}): run chmod 600 ${path}`);
      }
      if (stat.size > MAX_FILE_BYTES) throw new Error(`identity file ${path} is not a p2pshare identity (too large)`);
      text = await file.readFile('utf8');
    } finally {
      await file.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if ((err as NodeJS.ErrnoException).code) throw new Error(`cannot read identity file ${path}: ${(err as Error).message}`);
    throw err;
  }
  return parseIdentity(path, text);
}

function parseIdentity(path: string, text: string): Identity {
  const bad = (why: string) => new Error(`identity file ${path} ${why}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad('is not valid JSON');
  }
  const o = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  if (o.type !== FILE_TYPE) throw bad(`is not a p2pshare identity (no "type":"${FILE_TYPE}")`);
  if (o.version !== FILE_VERSION) throw bad(`has version ${JSON.stringify(o.version)}; this p2pshare reads version ${FILE_VERSION}`);
  const privateRaw = typeof o.privateKey === 'string' ? decodeKey(o.privateKey) : null;
  if (!privateRaw) throw bad('has a privateKey that is not 32 bytes in base64url');
  const publicKey = typeof o.publicKey === 'string' ? decodeKey(o.publicKey) : null;
  if (!publicKey) throw bad('has a publicKey that is not 32 bytes in base64url');
  const privateKey = PrivateKey.fromRaw(privateRaw);
  if (!privateKey.publicKey.equals(publicKey)) throw bad('has a publicKey that does not match its privateKey');
  return { path, privateKey, publicKey, fingerprint: fingerprint(publicKey) };
}

/**
 * Writes a new key to a temp file and link()s it into place: link() fails if the file exists,
 * so of several first uses racing exactly one key lands, and every one then reads that key.
 */
async function createIdentity(path: string): Promise<Identity> {
  const key = PrivateKey.generate();
  const json = JSON.stringify({ type: FILE_TYPE, version: FILE_VERSION, privateKey: encodeKey(key.raw()), publicKey: encodeKey(key.publicKey) });
  let temp: string | undefined;
  try {
    temp = await writePrivateTemp(path, `${json}\n`);
    await link(temp, path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  } catch (err) {
    throw new Error(`cannot create identity file ${path}: ${(err as Error).message}`);
  } finally {
    if (temp) await unlink(temp).catch(() => {});
  }
  const identity = await readIdentity(path);
  if (!identity) throw new Error(`identity file ${path} vanished while it was being created`);
  return identity;
}
