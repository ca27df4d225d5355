import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PrivateKey } from '../../src/core/x25519';
import {
  decodeKey,
  defaultIdentityPath,
  encodeKey,
  fingerprint,
  loadOrCreateIdentity,
  parseFingerprint,
} from '../../src/crypto/identity';
import { tempDir } from '../support/cli';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir('p2pshare-identity-')));
after(async () => cleanup?.());

const posix = process.platform !== 'win32';

test('the default path: absolute XDG_CONFIG_HOME, else HOME/.config', () => {
  assert.equal(defaultIdentityPath({ XDG_CONFIG_HOME: '/x/cfg', HOME: '/home/u' }), join('/x/cfg', 'p2pshare', 'identity'));
  assert.equal(defaultIdentityPath({ XDG_CONFIG_HOME: 'rel/cfg', HOME: '/home/u' }), join('/home/u', '.config', 'p2pshare', 'identity'));
  assert.equal(defaultIdentityPath({ XDG_CONFIG_HOME: '', HOME: '/home/u' }), join('/home/u', '.config', 'p2pshare', 'identity'));
  assert.throws(() => defaultIdentityPath({}), /neither XDG_CONFIG_HOME nor HOME is set \(use --identity FILE\)/);
});

test('first use creates the file (0600, folder 0700) in the documented JSON; later uses load it', async () => {
  const path = join(dir, 'first', 'p2pshare', 'identity');
  const created = await loadOrCreateIdentity(path);
  const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(json), ['type', 'version', 'privateKey', 'publicKey']);
  assert.equal(json.type, 'p2pshare-identity');
  assert.equal(json.version, 1);
  assert.match(json.privateKey as string, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(json.publicKey, encodeKey(created.publicKey));
  assert.deepEqual(PrivateKey.fromRaw(decodeKey(json.privateKey as string)!).publicKey, created.publicKey);
  assert.equal(created.fingerprint, fingerprint(created.publicKey));
  assert.equal(created.path, path);
  if (posix) {
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'first', 'p2pshare'))).mode & 0o777, 0o700);
  }
  const again = await loadOrCreateIdentity(path);
  assert.deepEqual(again.publicKey, created.publicKey);
  assert.deepEqual(again.privateKey.raw(), created.privateKey.raw());
  assert.deepEqual(await readdir(join(dir, 'first', 'p2pshare')), ['identity']);
});

test('first uses racing all end with the one key that landed, and leave no temp files', async () => {
  const path = join(dir, 'race', 'identity');
  const all = await Promise.all(Array.from({ length: 12 }, () => loadOrCreateIdentity(path)));
  for (const id of all) assert.deepEqual(id.publicKey, all[0]!.publicKey);
  assert.deepEqual((await loadOrCreateIdentity(path)).publicKey, all[0]!.publicKey);
  assert.deepEqual(await readdir(join(dir, 'race')), ['identity']);
});

async function refusal(name: string, content: string, mode = 0o600): Promise<string> {
  const path = join(dir, 'bad', name);
  await mkdir(join(dir, 'bad'), { recursive: true });
  await writeFile(path, content, { mode });
  await chmod(path, mode);
  const err = await loadOrCreateIdentity(path).then(
    () => assert.fail(`${name} was accepted`),
    (e: Error) => e,
  );
  assert.ok(err.message.includes(path), err.message);
  assert.doesNotMatch(err.message, /\n/);
  return err.message;
}

const valid = () => {
  const key = PrivateKey.generate();
  return { type: 'p2pshare-identity', version: 1, privateKey: encodeKey(key.raw()), publicKey: encodeKey(key.publicKey) };
};

test('refuses a file group or others can access, like ssh', { skip: !posix }, async () => {
  const text = JSON.stringify(valid());
  assert.match(await refusal('0644', text, 0o644), /accessible by others \(mode 0644\): run chmod 600 /);
  assert.match(await refusal('0640', text, 0o640), /mode 0640/);
  assert.match(await refusal('0602', text, 0o602), /mode 0602/);
});

test('refuses malformed files with one clear line naming the file', async () => {
  const other = PrivateKey.generate();
  assert.match(await refusal('json', '{"type":'), /is not valid JSON/);
  assert.match(await refusal('array', '[]'), /is not a p2pshare identity/);
  assert.match(await refusal('type', JSON.stringify({ ...valid(), type: 'ssh' })), /is not a p2pshare identity/);
  assert.match(await refusal('version', JSON.stringify({ ...valid(), version: 2 })), /has version 2; this p2pshare reads version 1/);
  assert.match(await refusal('short', JSON.stringify({ ...valid(), privateKey: encodeKey(randomBytes(32)).slice(1) })), /privateKey that is not 32 bytes/);
  assert.match(await refusal('padded', JSON.stringify({ ...valid(), publicKey: `${encodeKey(other.publicKey)}=` })), /publicKey that is not 32 bytes/);
  assert.match(await refusal('mismatch', JSON.stringify({ ...valid(), publicKey: encodeKey(other.publicKey) })), /publicKey that does not match its privateKey/);
  assert.match(await refusal('huge', ' '.repeat(10_000)), /too large/);
  await mkdir(join(dir, 'bad', 'folder'), { recursive: true });
  await assert.rejects(loadOrCreateIdentity(join(dir, 'bad', 'folder')), /identity file .*folder is not a regular file/);
});

test('a path that cannot be read or created is one clear line', async () => {
  await writeFile(join(dir, 'plain-file'), '');
  await assert.rejects(loadOrCreateIdentity(join(dir, 'plain-file', 'identity')), (e: Error) => {
    assert.match(e.message, /^cannot read identity file .*plain-file[/\\]identity: /);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  // A 250-character name can be looked up, but its temp file's name is too long to create.
  const long = join(dir, 'x'.repeat(250));
  await assert.rejects(loadOrCreateIdentity(long), /cannot create identity file .*x{250}: ENAMETOOLONG/);
});

/** RFC 4648 base32 the slow way, as a reference. */
function base32(bytes: Buffer): string {
  const bits = [...bytes].map((b) => b.toString(2).padStart(8, '0')).join('');
  return bits.match(/.{5}/g)!.map((five) => 'abcdefghijklmnopqrstuvwxyz234567'[parseInt(five, 2)]).join('');
}

test('fingerprint: base32 of the first 15 bytes of SHA-256(key), 24 lower-case characters', () => {
  assert.equal(base32(Buffer.from('foobar')).slice(0, 9), 'mzxw6ytboi'.slice(0, 9)); // RFC 4648 section 10
  for (let i = 0; i < 50; i++) {
    const key = randomBytes(32);
    const fp = fingerprint(key);
    assert.equal(fp, base32(createHash('sha256').update(key).digest().subarray(0, 15)));
    assert.match(fp, /^[a-z2-7]{24}$/);
  }
  assert.equal(fingerprint(Buffer.alloc(32)), base32(createHash('sha256').update(Buffer.alloc(32)).digest().subarray(0, 15)));
});

test('parseFingerprint: any case, dashes and spaces ignored, validated', () => {
  const fp = fingerprint(randomBytes(32));
  assert.equal(parseFingerprint(fp), fp);
  assert.equal(parseFingerprint(fp.toUpperCase()), fp);
  assert.equal(parseFingerprint(fp.match(/.{4}/g)!.join('-')), fp);
  assert.equal(parseFingerprint(` ${fp.slice(0, 12)} ${fp.slice(12).toUpperCase()}\t`), fp);
  assert.equal(parseFingerprint(fp.slice(1)), null);
  assert.equal(parseFingerprint(`${fp}a`), null);
  assert.equal(parseFingerprint(`${fp.slice(1)}1`), null); // 0, 1, 8 and 9 are not base32
  assert.equal(parseFingerprint(`${fp.slice(1)}_`), null);
  assert.equal(parseFingerprint(''), null);
});

test('keys as base64url: 43 characters, one spelling', () => {
  const key = randomBytes(32);
  const text = encodeKey(key);
  assert.equal(text.length, 43);
  assert.deepEqual(decodeKey(text), key);
  assert.equal(decodeKey(`${text}=`), null);
  assert.equal(decodeKey(text.slice(1)), null);
  assert.equal(decodeKey(key.toString('base64').slice(0, 43).replace(/[A-Za-z0-9_-]/, '+')), null);
  // 'A' and 'B' in the last place decode to the same bytes; only the canonical one is a key.
  const zero = encodeKey(Buffer.alloc(32));
  assert.equal(zero.at(-1), 'A');
  assert.deepEqual(decodeKey(zero), Buffer.alloc(32));
  assert.equal(decodeKey(`${zero.slice(0, 42)}B`), null);
  assert.throws(() => encodeKey(randomBytes(31)), /32 bytes/);
});
