import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodeKey } from '../../src/crypto/identity';
import { KnownPeers, knownPeersPath } from '../../src/crypto/known-peers';
import { tempDir } from '../support/cli';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir('p2pshare-known-peers-')));
after(async () => cleanup?.());

let n = 0;
async function folder(): Promise<string> {
  const d = join(dir, `case-${n++}`);
  await mkdir(d);
  return d;
}

test('known_peers lives beside the identity file', () => {
  assert.equal(knownPeersPath(join('/home/u/.config/p2pshare', 'identity')), join('/home/u/.config/p2pshare', 'known_peers'));
  assert.equal(knownPeersPath(join('/keys', 'work.json')), join('/keys', 'known_peers'));
});

test('no file is an empty list; the first pin creates it, 0600', async () => {
  const path = join(await folder(), 'sub', 'known_peers');
  const peers = await KnownPeers.load(path);
  assert.equal(peers.get('olive'), undefined);
  const key = randomBytes(32);
  await peers.pin('Olive', key);
  assert.deepEqual(peers.get('olive'), key);
  assert.deepEqual(peers.get('OLIVE'), key);
  assert.equal(await readFile(path, 'utf8'), `olive ${encodeKey(key)}\n`);
  if (process.platform !== 'win32') assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.deepEqual((await KnownPeers.load(path)).get('Olive'), key);
});

test('comments, blank and unknown lines are tolerated and kept as they are', async () => {
  const path = join(await folder(), 'known_peers');
  const [a, b, c] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  const original = [
    '# pinned by p2pshare',
    '',
    `Alice ${encodeKey(a)}`,
    '   # indented comment',
    'future-format alice 1 2 3',
    `bob ${encodeKey(b).slice(1)}`,
    `#carol ${encodeKey(c)}`,
    `  dave\t${encodeKey(c)}  `,
    `alice ${encodeKey(b)}`,
  ];
  await writeFile(path, original.join('\r\n') + '\r\n');
  const peers = await KnownPeers.load(path);
  assert.deepEqual(peers.get('alice'), a, 'the first line of a name counts');
  assert.equal(peers.get('bob'), undefined, 'a key that is not 32 bytes is not an entry');
  assert.equal(peers.get('carol'), undefined);
  assert.equal(peers.get('#carol'), undefined);
  assert.deepEqual(peers.get('Dave'), c);

  const e = randomBytes(32);
  await peers.pin('erin', e);
  assert.equal(await readFile(path, 'utf8'), [...original, `erin ${encodeKey(e)}`].join('\n') + '\n');
});

test('pinning a known name replaces its line in place and drops later duplicates', async () => {
  const path = join(await folder(), 'known_peers');
  const [old, other, dup, fresh] = [randomBytes(32), randomBytes(32), randomBytes(32), randomBytes(32)];
  await writeFile(path, `# c\nOlive ${encodeKey(old)}\nbob ${encodeKey(other)}\nolive ${encodeKey(dup)}\n# end\n`, { mode: 0o644 });
  await chmod(path, 0o644);
  const peers = await KnownPeers.load(path);
  await peers.pin('OLIVE', fresh);
  assert.equal(await readFile(path, 'utf8'), `# c\nolive ${encodeKey(fresh)}\nbob ${encodeKey(other)}\n# end\n`);
  assert.deepEqual(peers.get('olive'), fresh);
  assert.deepEqual(peers.get('bob'), other);
  if (process.platform !== 'win32') assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.deepEqual((await readdir(join(path, '..'))).sort(), ['known_peers'], 'no temp file left');
});

test('a pin keeps what another process pinned since this one loaded', async () => {
  const path = join(await folder(), 'known_peers');
  const first = await KnownPeers.load(path);
  const second = await KnownPeers.load(path);
  const [a, b] = [randomBytes(32), randomBytes(32)];
  await second.pin('bob', b);
  await first.pin('alice', a);
  const now = await KnownPeers.load(path);
  assert.deepEqual(now.get('alice'), a);
  assert.deepEqual(now.get('bob'), b);
  assert.deepEqual(first.get('bob'), b);
});

test('names that cannot be a line are refused; an unreadable path is one clear line', async () => {
  const peers = await KnownPeers.load(join(await folder(), 'known_peers'));
  for (const bad of ['', 'two words', '#hash', 'tab\there', 'new\nline']) {
    await assert.rejects(peers.pin(bad, randomBytes(32)), /not a peer name/);
  }
  await assert.rejects(peers.pin('ok', randomBytes(31)), /32 bytes/);
  const d = await folder();
  await mkdir(join(d, 'known_peers'));
  await assert.rejects(KnownPeers.load(join(d, 'known_peers')), /cannot read known_peers file .*known_peers: EISDIR/);
  const plain = join(d, 'file');
  await writeFile(plain, '');
  const under = await KnownPeers.load(join(plain, 'x')).catch((e: Error) => e);
  assert.match(String(under), /cannot read known_peers file .*: ENOTDIR/);
});
