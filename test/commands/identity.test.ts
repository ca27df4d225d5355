// `p2pshare id` and the identity file through the built CLI: created on first use where the README
// says (0600 in a 0700 folder), the same fingerprint on every run, --json, --identity FILE, a file
// others can read or a corrupt one refused in one line (and never replaced); and the fingerprint
// every other command shows: the peer's ready line, peers, files.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, tempDir } from '../support/cli';
import { registry, startPeer } from '../peer/support';
import { oneLine } from './support';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir('p2pshare-id-')));
after(async () => cleanup?.());

const posix = process.platform !== 'win32';

/** PROTOCOL.md 3.3, computed here independently: base32 (RFC 4648, lower case) of SHA-256(key)[0..15]. */
function expectedFingerprint(publicKeyB64url: string): string {
  const bytes = createHash('sha256').update(Buffer.from(publicKeyB64url, 'base64url')).digest().subarray(0, 15);
  const bits = [...bytes].map((b) => b.toString(2).padStart(8, '0')).join('');
  return bits.replace(/.{5}/g, (five) => 'abcdefghijklmnopqrstuvwxyz234567'[parseInt(five, 2)]!);
}

/** `p2pshare ...args` with its own config home (and HOME), never the test file's shared one. */
function cli(args: string[], env: Record<string, string | undefined>) {
  return runCli(args, { env, cwd: dir });
}


test('id creates the identity on first use under $XDG_CONFIG_HOME (0600 in 0700) and prints the same 24-character fingerprint every run', async () => {
  const config = join(dir, 'xdg');
  const env = { XDG_CONFIG_HOME: config, HOME: join(dir, 'unused-home') };
  const first = await cli(['id'], env);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stderr, '');
  assert.match(first.stdout, /^[a-z2-7]{24}\n$/);
  const path = join(config, 'p2pshare', 'identity');
  if (posix) {
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(config, 'p2pshare'))).mode & 0o777, 0o700);
  }
  assert.deepEqual(await readdir(join(config, 'p2pshare')), ['identity'], 'nothing else (no temp file, no known_peers yet)');
  assert.equal(existsSync(join(dir, 'unused-home')), false, 'HOME is not touched when XDG_CONFIG_HOME is set');
  const file = await readFile(path, 'utf8');

  const second = await cli(['id'], env);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stdout, first.stdout);
  assert.equal(await readFile(path, 'utf8'), file, 'the file is read, not rewritten');

  const json = await cli(['id', '--json'], env);
  assert.equal(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as Record<string, string>;
  assert.deepEqual(Object.keys(doc).sort(), ['fingerprint', 'path', 'publicKey']);
  assert.equal(`${doc.fingerprint}\n`, first.stdout);
  assert.equal(doc.path, path);
  assert.match(doc.publicKey!, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(doc.publicKey, JSON.parse(file).publicKey);
  assert.equal(doc.fingerprint, expectedFingerprint(doc.publicKey!));
});

test('without XDG_CONFIG_HOME (or with a relative one) the identity lives in ~/.config/p2pshare', async () => {
  const home = join(dir, 'home');
  await mkdir(home);
  const unset = await cli(['id', '--json'], { XDG_CONFIG_HOME: undefined, HOME: home });
  assert.equal(unset.code, 0, unset.stderr);
  const path = join(home, '.config', 'p2pshare', 'identity');
  assert.equal(JSON.parse(unset.stdout).path, path);
  if (posix) {
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(home, '.config', 'p2pshare'))).mode & 0o777, 0o700);
  }
  // The XDG Base Directory spec: a relative XDG_CONFIG_HOME is invalid and ignored.
  const relative = await cli(['id', '--json'], { XDG_CONFIG_HOME: 'relative/cfg', HOME: home });
  assert.equal(relative.code, 0, relative.stderr);
  assert.deepEqual(JSON.parse(relative.stdout), JSON.parse(unset.stdout));
  assert.equal(existsSync(join(dir, 'relative')), false);

  const nowhere = await cli(['id'], { XDG_CONFIG_HOME: undefined, HOME: undefined, USERPROFILE: undefined });
  assert.equal(nowhere.code, 1);
  assert.match(oneLine(nowhere.stderr), /^error: .*neither XDG_CONFIG_HOME nor HOME is set \(use --identity FILE\)$/);
});

test('--identity FILE uses (and creates) that file instead; the default one is left alone', async () => {
  const config = join(dir, 'xdg-other');
  const env = { XDG_CONFIG_HOME: config };
  const own = JSON.parse((await cli(['id', '--json'], env)).stdout) as Record<string, string>;
  const file = join(dir, 'keys', 'work.identity');
  const other = await cli(['id', '--json', '--identity', file], env);
  assert.equal(other.code, 0, other.stderr);
  const doc = JSON.parse(other.stdout) as Record<string, string>;
  assert.equal(doc.path, file);
  assert.notEqual(doc.fingerprint, own.fingerprint);
  assert.notEqual(doc.publicKey, own.publicKey);
  if (posix) assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal(JSON.parse(await readFile(file, 'utf8')).publicKey, doc.publicKey);
  const again = await cli(['id', '--identity', file], env);
  assert.equal(again.stdout, `${doc.fingerprint}\n`);
  assert.equal((await cli(['id'], env)).stdout, `${own.fingerprint}\n`, 'the default identity is unchanged');
});

test('an identity file group or others may read is refused in one line (exit 1) by id, get and peer, and left as it is', { skip: !posix }, async () => {
  const file = join(dir, 'loose.identity');
  const created = await cli(['id', '--identity', file], {});
  assert.equal(created.code, 0, created.stderr);
  const content = await readFile(file, 'utf8');
  for (const mode of [0o640, 0o604, 0o660, 0o644]) {
    await chmod(file, mode);
    const octal = mode.toString(8).padStart(4, '0');
    for (const args of [
      ['id', '--identity', file],
      ['get', 'someone', 'a.txt', '--identity', file, '--registry', 'http://127.0.0.1:1'],
      ['peer', '--name', 'someone', '--no-interactive', '--identity', file, '--registry', 'http://127.0.0.1:1'],
    ]) {
      const res = await cli(args, {});
      assert.equal(res.code, 1, `${args[0]} with mode ${octal}: ${res.stderr}`);
      assert.equal(res.stdout, '');
      assert.equal(oneLine(res.stderr), `error: identity file ${file} is accessible by others (mode ${octal}): run chmod 600 ${file}`);
    }
    assert.equal((await stat(file)).mode & 0o777, mode, 'the mode is the user\'s to fix');
  }
  assert.equal(await readFile(file, 'utf8'), content);
  await chmod(file, 0o600);
  assert.equal((await cli(['id', '--identity', file], {})).stdout, created.stdout, 'usable again once 0600');
});

test('a corrupt identity file is refused in one line (exit 1), never replaced by a new key', async () => {
  const good = JSON.parse(await readFile(JSON.parse((await cli(['id', '--json', '--identity', join(dir, 'good.identity')], {})).stdout).path, 'utf8'));
  const other = JSON.parse(await readFile(JSON.parse((await cli(['id', '--json', '--identity', join(dir, 'other.identity')], {})).stdout).path, 'utf8'));
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{"type":"p2pshare-identity", trunc', /is not valid JSON$/],
    ['empty', '', /is not valid JSON$/],
    ['another JSON file', '{"hello":"world"}\n', /is not a p2pshare identity/],
    ['a short private key', JSON.stringify({ ...good, privateKey: good.privateKey.slice(0, 40) }), /privateKey that is not 32 bytes/],
    ['a public key of another private key', JSON.stringify({ ...good, publicKey: other.publicKey }), /publicKey that does not match its privateKey$/],
    ['a future version', JSON.stringify({ ...good, version: 2 }), /has version 2; this p2pshare reads version 1$/],
  ];
  for (const [what, text, why] of cases) {
    const file = join(dir, `corrupt-${what.replace(/\W+/g, '-')}.identity`);
    await writeFile(file, text, { mode: 0o600 });
    const res = await cli(['id', '--identity', file], {});
    assert.equal(res.code, 1, `${what}: ${res.stderr}`);
    assert.equal(res.stdout, '', what);
    const line = oneLine(res.stderr);
    assert.ok(line.startsWith(`error: identity file ${file} `), `${what}: ${line}`);
    assert.match(line, why, what);
    assert.equal(await readFile(file, 'utf8'), text, `${what}: the file is left as it was`);
  }
  // A folder where the file should be: one line too.
  const folder = join(dir, 'a-folder.identity');
  await mkdir(folder);
  const res = await cli(['id', '--identity', folder], {});
  assert.equal(res.code, 1);
  assert.match(oneLine(res.stderr), new RegExp(`^error: .*identity file ${folder}`));
});

test("the peer's ready line shows its fingerprint, as id prints it; peers, peers --json and files --json list it", async () => {
  const reg = await registry();
  const aliceKey = join(dir, 'peers', 'alice.identity');
  const bobKey = join(dir, 'peers', 'bob.identity');
  const share = join(dir, 'peers', 'share');
  await mkdir(share, { recursive: true });
  await writeFile(join(share, 'hello.txt'), 'hello\n');
  const fp = async (file: string) => (await cli(['id', '--identity', file], {})).stdout.trim();
  const alice = await startPeer('alice', reg.url, share, ['--identity', aliceKey, '--share', join(share, 'hello.txt')]);
  const bob = await startPeer('bob', reg.url, share, ['--identity', bobKey, '--share', join(share, 'hello.txt')]);
  try {
    const aliceFp = await fp(aliceKey);
    const bobFp = await fp(bobKey);
    assert.notEqual(aliceFp, bobFp);
    assert.match(alice.cli.stdout, new RegExp(`^peer alice ready on udp/tcp port ${alice.port}, key ${aliceFp}, sharing 1 file \\(6 bytes\\): hello\\.txt$`, 'm'));
    assert.match(bob.cli.stdout, new RegExp(`^peer bob ready on udp/tcp port ${bob.port}, key ${bobFp}, `, 'm'));

    const text = await cli(['peers', '--registry', reg.url], {});
    assert.equal(text.code, 0, text.stderr);
    assert.deepEqual(text.stdout.split('\n').filter(Boolean).sort(), [`alice  ${aliceFp}`, `bob    ${bobFp}`]);

    const json = await cli(['peers', '--registry', reg.url, '--json'], {});
    assert.equal(json.code, 0, json.stderr);
    const peers = (JSON.parse(json.stdout).peers as Record<string, string>[]).sort((a, b) => a.name!.localeCompare(b.name!));
    assert.deepEqual(peers.map((p) => [p.name, p.fingerprint]), [['alice', aliceFp], ['bob', bobFp]]);
    for (const p of peers) assert.ok(!Number.isNaN(Date.parse(p.lastSeen!)), `lastSeen is a date: ${p.lastSeen}`);

    const requester = { XDG_CONFIG_HOME: join(dir, 'peers', 'requester') };
    const files = await cli(['files', 'alice', '--registry', reg.url, '--json'], requester);
    assert.equal(files.code, 0, files.stderr);
    const doc = JSON.parse(files.stdout);
    assert.equal(doc.fingerprint, aliceFp);
    assert.deepEqual(doc.files.map((f: { name: string }) => f.name), ['hello.txt']);
    const table = await cli(['files', 'bob', '--registry', reg.url], requester);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^hello\.txt +6 B {2}text {2}tcp\n$/);
    assert.equal(table.stderr, `bob's key: ${bobFp}\n`);
  } finally {
    await alice.cli.stop();
    await bob.cli.stop();
    await reg.close();
  }
});
