// `peer --allow FINGERPRINT|NAME ...` through the built CLI: the owner serves the requesters whose
// authenticated key is listed (by fingerprint, or by the key registered under a name) and refuses
// everyone else — get and files alike exit 4 with one line, nothing is sent; an entry that is
// neither a fingerprint nor a name is bad usage.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadOrCreateIdentity } from '../../src/crypto/identity';
import { runCli } from '../support/cli';
import { sha256, startPeer } from '../peer/support';
import { oneLine, registryWithFile } from './support';

const fx = registryWithFile('p2pshare-allow-', 'plan.txt', 'for the allowed only\n'.repeat(50));

/** A requester identified by the key file `keys/<who>.identity`. */
function requester(who: string) {
  const identity = join(fx.dir, 'keys', `${who}.identity`);
  const downloads = join(fx.dir, 'downloads', who);
  return {
    identity,
    downloads,
    fingerprint: async () => (await loadOrCreateIdentity(identity)).fingerprint,
    run: (args: string[]) => runCli([...args, '--registry', fx.reg.url, '--identity', identity], { cwd: fx.dir }),
    get: (owner: string) => runCli(['get', owner, 'plan.txt', '--registry', fx.reg.url, '--identity', identity, '--downloads', downloads, '--json'], { cwd: fx.dir }),
  };
}


/** B is refused by `owner`, by get and by files (text and JSON): exit 4, one line, nothing saved. */
async function assertRefused(b: ReturnType<typeof requester>, owner: string): Promise<void> {
  const expected = `error: peer '${owner}' does not serve you: your key is not on its --allow list (show yours with p2pshare id)`;
  for (const res of [await b.get(owner), await b.run(['get', owner, 'plan.txt', '--downloads', b.downloads]), await b.run(['files', owner]), await b.run(['files', owner, '--json'])]) {
    assert.equal(res.code, 4, res.stderr);
    assert.equal(res.stdout, '');
    assert.equal(oneLine(res.stderr), expected);
  }
  assert.equal(existsSync(b.downloads), false, 'nothing fetched, no .part');
}

test('--allow FINGERPRINT serves that key and refuses another (exit 4, one line) for get and files', async () => {
  const a = requester('a');
  const b = requester('b');
  const aFp = await a.fingerprint();
  // Any spelling of the fingerprint: upper case, dashes.
  const spelled = aFp.toUpperCase().replace(/(.{6})(?!$)/g, '$1-');
  const owner = await startPeer('vault', fx.reg.url, fx.share, ['--identity', join(fx.dir, 'keys', 'vault.identity'), '--share', join(fx.share, 'plan.txt'), '--allow', spelled]);
  try {
    const got = await a.get('vault');
    assert.equal(got.code, 0, got.stderr);
    assert.equal(await sha256(JSON.parse(got.stdout).path), fx.digest);
    const listed = await a.run(['files', 'vault', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).files.map((f: { name: string }) => f.name), ['plan.txt']);

    await assertRefused(b, 'vault');
    const sent = owner.cli.stdout.split('\n').filter((l) => / sent /.test(l));
    assert.equal(sent.length, 1, `only A's get was served: ${owner.cli.stdout}`);
  } finally {
    await owner.cli.stop();
  }
});

test('--allow NAME serves the key registered under NAME and refuses others, registered or not', async () => {
  const a = requester('alice');
  const b = requester('bob');
  const c = requester('carol');
  // alice and bob are peers registered with their own keys; carol is not registered at all.
  const alice = await startPeer('alice', fx.reg.url, fx.dir, ['--identity', a.identity, '--share', join(fx.share, 'plan.txt')]);
  const bob = await startPeer('bob', fx.reg.url, fx.dir, ['--identity', b.identity, '--share', join(fx.share, 'plan.txt')]);
  const owner = await startPeer('keep', fx.reg.url, fx.share, ['--identity', join(fx.dir, 'keys', 'keep.identity'), '--share', join(fx.share, 'plan.txt'), '--allow', 'Alice']);
  try {
    const got = await a.get('keep');
    assert.equal(got.code, 0, got.stderr);
    assert.equal(await sha256(JSON.parse(got.stdout).path), fx.digest);
    await assertRefused(b, 'keep');
    await assertRefused(c, 'keep');
    // Allowing a name is not allowing whoever asks under it: the key decides.
    const again = await a.get('keep');
    assert.equal(again.code, 0, again.stderr);
  } finally {
    await owner.cli.stop();
    await alice.cli.stop();
    await bob.cli.stop();
  }
});

test('--allow NAME admits a peer that registers after the owner started, even right after an unlisted key was refused', async () => {
  const late = requester('late');
  const other = requester('other');
  const owner = await startPeer('door', fx.reg.url, fx.share, ['--identity', join(fx.dir, 'keys', 'door.identity'), '--share', join(fx.share, 'plan.txt'), '--allow', 'late']);
  let peer: Awaited<ReturnType<typeof startPeer>> | undefined;
  try {
    // 'late' is not registered yet: the owner finds no key under that name.
    await assertRefused(other, 'door');
    await assertRefused(late, 'door');
    peer = await startPeer('late', fx.reg.url, fx.dir, ['--identity', late.identity, '--share', join(fx.share, 'plan.txt')]);
    const t0 = Date.now();
    let got = await late.get('door');
    // The owner may remember "no key under 'late'" for a moment, not for long.
    while (got.code === 4 && Date.now() - t0 < 5000) got = await late.get('door');
    assert.equal(got.code, 0, `${Date.now() - t0} ms after registering: ${got.stderr}`);
    assert.equal(await sha256(JSON.parse(got.stdout).path), fx.digest);
    await assertRefused(other, 'door');
  } finally {
    await owner.cli.stop();
    await peer?.cli.stop();
  }
});

test('an --allow entry that is neither a fingerprint nor a name is bad usage for peer (exit 2), before registering', async () => {
  for (const entry of ['not a name', 'bob@host', '', 'x'.repeat(33), 'abcdefghijklmnopqrstuvw1!']) {
    const res = await runCli(['peer', '--name', 'never', '--no-interactive', '--registry', fx.reg.url, '--identity', join(fx.dir, 'keys', 'never.identity'), '--allow', 'alice', '--allow', entry], { cwd: fx.dir });
    assert.equal(res.code, 2, `--allow '${entry}': ${res.stderr}`);
    assert.equal(res.stdout, '');
    assert.equal(oneLine(res.stderr), `error: --allow ${entry}: neither a key fingerprint (p2pshare id) nor a peer name`);
  }
  const peers = await runCli(['peers', '--registry', fx.reg.url, '--json']);
  assert.ok(!JSON.parse(peers.stdout).peers.some((p: { name: string }) => p.name === 'never'), 'never registered');
});
