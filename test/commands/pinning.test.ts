// Key pinning through the built CLI, real owners and a real registry: the first files/get from a
// name records its key in known_peers beside the requester's identity; an owner that comes back
// under that name with another key is refused with exit 6 and one line naming both fingerprints,
// and nothing is fetched; --accept-new-key and NAME@FINGERPRINT (checked out of band) replace the
// pin; a wrong NAME@FINGERPRINT is refused before a single datagram leaves; a malformed one is
// bad usage.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { loadOrCreateIdentity } from '../../src/crypto/identity';
import { RegistryClient } from '../../src/registry/client';
import { runCli, type RunningCli } from '../support/cli';
import { sha256, startPeer } from '../peer/support';
import { oneLine, registryWithFile } from './support';

const fx = registryWithFile('p2pshare-pin-', 'notes.txt', 'pinned notes\n'.repeat(100));

/** An owner `name` serving notes.txt with the key in `keyFile`; resolves with it and its fingerprint. */
async function owner(name: string, keyFile: string): Promise<{ cli: RunningCli; fingerprint: string; publicKey: string }> {
  const { cli } = await startPeer(name, fx.reg.url, fx.share, ['--identity', keyFile, '--share', join(fx.share, 'notes.txt')]);
  const id = await loadOrCreateIdentity(keyFile);
  return { cli, fingerprint: id.fingerprint, publicKey: id.publicKey.toString('base64url') };
}

/** A requester with its own config home (so its own identity and known_peers). */
function requester(name: string) {
  const config = join(fx.dir, 'requesters', name);
  const known = join(config, 'p2pshare', 'known_peers');
  return {
    known,
    downloads: join(fx.dir, 'requesters', name, 'downloads'),
    run: (args: string[]) => runCli([...args, '--registry', fx.reg.url], { env: { XDG_CONFIG_HOME: config }, cwd: fx.dir }),
    pins: async () => (existsSync(known) ? (await readFile(known, 'utf8')) : ''),
  };
}


test('the first files, and the first get, from a name pin its key in known_peers beside the identity', async () => {
  const olive = await owner('olive', join(fx.dir, 'keys', 'olive-first.identity'));
  try {
    const r = requester('first-files');
    assert.equal(await r.pins(), '');
    const files = await r.run(['files', 'olive', '--json']);
    assert.equal(files.code, 0, files.stderr);
    assert.equal(JSON.parse(files.stdout).fingerprint, olive.fingerprint);
    assert.equal(await r.pins(), `olive ${olive.publicKey}\n`);
    const get = await r.run(['get', 'olive', 'notes.txt', '--downloads', r.downloads]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(await r.pins(), `olive ${olive.publicKey}\n`, 'pinned once, not twice');

    // --identity FILE: known_peers lives beside that file, not in the config home.
    const other = requester('first-get');
    const keyFile = join(fx.dir, 'requesters', 'elsewhere', 'me.identity');
    const viaFile = await other.run(['get', 'OLIVE', 'notes.txt', '--downloads', other.downloads, '--identity', keyFile, '--json']);
    assert.equal(viaFile.code, 0, viaFile.stderr);
    assert.equal(await sha256(JSON.parse(viaFile.stdout).path), fx.digest);
    assert.equal(await readFile(join(fx.dir, 'requesters', 'elsewhere', 'known_peers'), 'utf8'), `olive ${olive.publicKey}\n`, 'names are pinned lower-cased');
    assert.equal(await other.pins(), '', 'the default folder holds no known_peers');
  } finally {
    await olive.cli.stop();
  }
});

test('an owner back under its name with another key: get and files exit 6 naming both fingerprints and fetch nothing; --accept-new-key replaces the pin', async () => {
  const r = requester('changed');
  let first: Awaited<ReturnType<typeof owner>> | undefined = await owner('rosa', join(fx.dir, 'keys', 'rosa-1.identity'));
  let second: Awaited<ReturnType<typeof owner>> | undefined;
  try {
    const ok = await r.run(['get', 'rosa', 'notes.txt', '--downloads', r.downloads]);
    assert.equal(ok.code, 0, ok.stderr);
    const pinned = await r.pins();
    assert.equal(pinned, `rosa ${first.publicKey}\n`);
    // The first owner stops (and unregisters); another key takes the free name.
    assert.equal(await first.cli.stop(), 0);
    const firstFp = first.fingerprint;
    first = undefined;
    second = await owner('rosa', join(fx.dir, 'keys', 'rosa-2.identity'));
    assert.notEqual(second.fingerprint, firstFp);

    const before = await readdir(r.downloads);
    for (const args of [['get', 'rosa', 'notes.txt', '--downloads', r.downloads], ['get', 'rosa', 'notes.txt', '--downloads', r.downloads, '--json'], ['files', 'rosa'], ['files', 'rosa', '--json']]) {
      const res = await r.run(args);
      assert.equal(res.code, 6, `${args.join(' ')}: ${res.stderr}`);
      assert.equal(res.stdout, '', args.join(' '));
      const line = oneLine(res.stderr);
      assert.ok(line.includes(second.fingerprint) && line.includes(firstFp), `names both fingerprints: ${line}`);
      assert.match(line, /^error: peer 'rosa' now presents key \w+, but known_peers pins \w+ for it; .*--accept-new-key$/);
    }
    assert.deepEqual(await readdir(r.downloads), before, 'nothing fetched, no .part');
    assert.equal(await r.pins(), pinned, 'the pin is unchanged');
    assert.doesNotMatch(second.cli.stdout, /sent/, 'the new owner served nothing');

    const accepted = await r.run(['get', 'rosa', 'notes.txt', '--downloads', r.downloads, '--accept-new-key', '--json']);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(await sha256(JSON.parse(accepted.stdout).path), fx.digest);
    assert.equal(await r.pins(), `rosa ${second.publicKey}\n`, 'the new key replaced the old one');
    const later = await r.run(['files', 'rosa', '--json']);
    assert.equal(later.code, 0, later.stderr);
    assert.equal(JSON.parse(later.stdout).fingerprint, second.fingerprint);
  } finally {
    await first?.cli.stop();
    await second?.cli.stop();
  }
});

test('get NAME@FINGERPRINT: the right one (any case, with dashes) fetches and pins, also over a changed pin; a wrong one exits 6', async () => {
  const iris = await owner('iris', join(fx.dir, 'keys', 'iris.identity'));
  try {
    const fresh = requester('at-fingerprint');
    const spelled = iris.fingerprint.toUpperCase().replace(/(.{4})(?!$)/g, '$1-');
    const ok = await fresh.run(['get', `iris@${spelled}`, 'notes.txt', '--downloads', fresh.downloads, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await sha256(JSON.parse(ok.stdout).path), fx.digest);
    assert.equal(await fresh.pins(), `iris ${iris.publicKey}\n`);

    const wrongFp = (await loadOrCreateIdentity(join(fx.dir, 'keys', 'not-iris.identity'))).fingerprint;
    const wrong = requester('wrong-fingerprint');
    for (const cmd of [['get', `iris@${wrongFp}`, 'notes.txt', '--downloads', wrong.downloads], ['files', `iris@${wrongFp}`]]) {
      const res = await wrong.run(cmd);
      assert.equal(res.code, 6, res.stderr);
      assert.equal(oneLine(res.stderr), `error: peer 'iris' presents key ${iris.fingerprint}, not the ${wrongFp} you gave; refusing to connect`);
    }
    assert.equal(await wrong.pins(), '', 'nothing pinned');
    assert.equal(existsSync(wrong.downloads), false, 'nothing fetched');

    // A pin for another key, overridden by a fingerprint checked out of band.
    const stale = requester('stale-pin');
    await mkdir(join(stale.known, '..'), { recursive: true });
    const staleKey = (await loadOrCreateIdentity(join(fx.dir, 'keys', 'stale.identity'))).publicKey.toString('base64url');
    await writeFile(stale.known, `# kept\niris ${staleKey}\n`);
    const refused = await stale.run(['get', 'iris', 'notes.txt', '--downloads', stale.downloads]);
    assert.equal(refused.code, 6, refused.stderr);
    const pinnedOob = await stale.run(['get', `iris@${iris.fingerprint}`, 'notes.txt', '--downloads', stale.downloads]);
    assert.equal(pinnedOob.code, 0, pinnedOob.stderr);
    assert.equal(await stale.pins(), `# kept\niris ${iris.publicKey}\n`);
  } finally {
    await iris.cli.stop();
  }
});

test('a wrong NAME@FINGERPRINT is refused before anything is sent to the address the registry gave', async () => {
  // A registration under 'decoy' whose address is a UDP socket of this test: it counts what arrives.
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((res) => sock.bind(0, '127.0.0.1', res));
  let datagrams = 0;
  sock.on('message', () => datagrams++);
  const key = await loadOrCreateIdentity(join(fx.dir, 'keys', 'decoy.identity'));
  await new RegistryClient(fx.reg.url).register({ name: 'decoy', port: sock.address().port, ip: '127.0.0.1' }, key.privateKey);
  const other = (await loadOrCreateIdentity(join(fx.dir, 'keys', 'not-decoy.identity'))).fingerprint;
  try {
    const r = requester('decoy');
    const wrong = await r.run(['get', `decoy@${other}`, 'x.txt', '--downloads', r.downloads]);
    assert.equal(wrong.code, 6, wrong.stderr);
    assert.match(oneLine(wrong.stderr), new RegExp(`presents key ${key.fingerprint}, not the ${other} you gave; refusing to connect$`));
    await sleep(200);
    assert.equal(datagrams, 0, 'not a datagram sent');
    // The control: with the right fingerprint the requester does try (and finds nobody answering).
    const right = await r.run(['get', `decoy@${key.fingerprint}`, 'x.txt', '--downloads', r.downloads]);
    assert.equal(right.code, 3, right.stderr);
    assert.match(right.stderr, /offline/);
    assert.ok(datagrams >= 1, `the handshake was tried (${datagrams} datagrams)`);
    assert.equal(await r.pins(), '', 'an owner that never proved its key is not pinned');
  } finally {
    sock.close();
  }
});

test('a malformed fingerprint after @ is bad usage (exit 2) for get and files, before any lookup', async () => {
  const r = requester('malformed');
  const valid = 'abcdefghijklmnopqrstuvwx';
  for (const pin of ['', 'xyz', valid.slice(0, 23), `${valid}a`, `${valid.slice(0, 23)}1`, `${valid.slice(0, 23)}8`, `${valid.slice(0, 23)}=`, `${valid}@${valid}`]) {
    for (const args of [['get', `nobody@${pin}`, 'x.txt', '--downloads', r.downloads], ['files', `nobody@${pin}`]]) {
      const res = await r.run(args);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(oneLine(res.stderr), /^error: '.*' is not a key fingerprint \(24 characters a-z, 2-7; see p2pshare id\)$/);
    }
  }
  assert.equal(await r.pins(), '');
});
