// A peer's name bound to its key: the same identity takes its name back at once (in process, and
// as a real `p2pshare peer` restarted after SIGKILL), another key is refused, and the process
// that lost its name to its own identity stops registering it but keeps serving; a peer signalled
// as soon as it says it is ready still unregisters.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { P2pError } from '../../src/core/errors';
import { PrivateKey } from '../../src/core/x25519';
import { ControlClient } from '../../src/control/client';
import { Peer } from '../../src/peer/peer';
import { ShareIndex } from '../../src/peer/share';
import { RegistryClient } from '../../src/registry/client';
import { loadOrCreateIdentity } from '../../src/crypto/identity';
import { requesterEndpoint } from '../support/secure';
import { startCli, tempDir } from '../support/cli';
import { registry } from './support';

/** The names peer `name` (key `key`) lists at `port`, asked directly (not through the registry). */
async function listAt(port: number, name: string, key: Buffer): Promise<string[]> {
  const endpoint = await requesterEndpoint();
  try {
    const conn = await endpoint.handshake({ address: '127.0.0.1', port }, { peerKey: key, ownerName: name });
    return (await new ControlClient(endpoint).list(conn, name)).map((e) => e.name);
  } finally {
    await endpoint.close();
  }
}

test('a second Peer with the same identity takes the name at once; the first is told once, stops registering, keeps serving', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry({ ttl: 1 }); // a heartbeat every 333 ms
  const file = join(dir, 'a.txt');
  await writeFile(file, 'shared by both\n');
  const identity = PrivateKey.generate();
  const noticesA: string[] = [];
  const a = await Peer.start({ name: 'twin', registryUrl: reg.url, share: await ShareIndex.build([file]), port: 0, identity, onNotice: (l) => noticesA.push(l) });
  let b: Peer | undefined;
  try {
    const client = new RegistryClient(reg.url);
    assert.equal((await client.lookup('twin')).port, a.port);
    await assert.rejects(
      Peer.start({ name: 'TWIN', registryUrl: reg.url, share: await ShareIndex.build([file]), port: 0, identity: PrivateKey.generate() }),
      (err: unknown) => err instanceof P2pError && err.code === 'NAME_TAKEN' && /taken/.test(err.message),
    );

    // At once: a reclaim of the live name (the registry counts it so), not a registration made
    // after A's had expired (a wall-clock bound could not tell them apart with a TTL of 1 s).
    const reclaims = async () => Number(/p2pshare_registry_reclaims_total (\d+)/.exec(await (await fetch(`${reg.url}/metrics`)).text())?.[1]);
    const before = await reclaims();
    b = await Peer.start({ name: 'twin', registryUrl: reg.url, share: await ShareIndex.build([file]), port: 0, identity });
    assert.equal(await reclaims(), before + 1, 'B reclaimed the live name');
    const rec = await client.lookup('twin');
    assert.equal(rec.port, b.port);
    assert.equal(rec.publicKey, identity.publicKey.toString('base64url'));

    await sleep(2000); // six heartbeat periods of A
    assert.equal(noticesA.length, 1, `notices: ${JSON.stringify(noticesA)}`);
    assert.match(noticesA[0]!, /'twin' was registered again by another process with this identity; no longer registering it, still serving/);
    assert.equal((await client.lookup('twin')).port, b.port, 'A did not take it back');
    assert.deepEqual(await listAt(a.port, 'twin', identity.publicKey), ['a.txt'], 'A still serves');

    await a.stop();
    assert.equal((await client.lookup('twin')).port, b.port, "A's stop did not unregister B");
    const metrics = await (await fetch(`${reg.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /method="DELETE"/, 'A did not even try');
  } finally {
    await a.stop();
    await b?.stop();
    await reg.close();
    await cleanup();
  }
});

test('p2pshare peer killed with SIGKILL and restarted with the same identity is registered again at once; another key gets exit 3', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry({ ttl: 30 }); // the dead process's registration would live on for 30 s
  await writeFile(join(dir, 'a.txt'), 'x\n');
  // The same identity file for the first and the second process; another one for the third.
  const identity = await loadOrCreateIdentity(join(dir, 'olive.identity'));
  const other = join(dir, 'other.identity');
  const base = ['peer', '--name', 'olive', '--registry', reg.url, '--no-interactive', '--share', 'a.txt'];
  const args = [...base, '--identity', identity.path];
  const client = new RegistryClient(reg.url);
  const first = startCli(args, { cwd: dir });
  let second: ReturnType<typeof startCli> | undefined;
  let third: ReturnType<typeof startCli> | undefined;
  try {
    const port1 = Number((await first.waitForLine(/ready on udp\/tcp port (\d+)/, 30_000))[1]);
    assert.equal((await client.lookup('olive')).port, port1);
    first.proc.kill('SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');
    assert.equal((await client.lookup('olive')).port, port1, 'the dead registration is still there');

    third = startCli([...base, '--identity', other], { cwd: dir });
    const refused = await third.exited;
    assert.equal(refused.code, 3, third.stderr);
    assert.match(third.stderr, /the name 'olive' is taken/);

    const t0 = Date.now();
    second = startCli(args, { cwd: dir });
    const port2 = Number((await second.waitForLine(/ready on udp\/tcp port (\d+)/, 30_000))[1]);
    const ms = Date.now() - t0;
    const rec = await client.lookup('olive');
    assert.equal(rec.port, port2);
    assert.equal(rec.publicKey, identity.publicKey.toString('base64url'));
    // Node's start-up included (0.3 s idle, over 1 s on a loaded machine): the point is that it
    // does not wait out the 30 s the dead process's entry had left (before keys: exit 3 here).
    assert.ok(ms < 5000, `registered ${ms} ms after the restart`);
    assert.equal(await second.stop('SIGTERM'), 0, second.stderr);
    await assert.rejects(client.lookup('olive'), /unknown peer/, 'unregistered on SIGTERM');
  } finally {
    await first.stop('SIGKILL');
    await second?.stop('SIGKILL');
    await third?.stop('SIGKILL');
    await reg.close();
    await cleanup();
  }
});

test('peer and serve-registry signalled the moment their ready line arrives still shut down cleanly (exit 0, name unregistered)', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry({ ttl: 30 });
  const client = new RegistryClient(reg.url);
  // With the handlers installed after the line, about one signal in four killed the process by
  // the default action (no unregister, exit by signal) when the machine was busy: three loops at
  // once keep it busy, so 18 clean exits in a row would be luck (under 1 %).
  const loop = async (l: number) => {
    for (let i = 0; i < 6; i++) {
      const name = `prompt${l}x${i}`;
      const peer = startCli(['peer', '--name', name, '--registry', reg.url, '--no-interactive'], { cwd: dir });
      await peer.waitForLine(/ready on udp\/tcp port/, 30_000);
      peer.proc.kill('SIGTERM');
      assert.deepEqual(await peer.exited, { code: 0, signal: null }, `${name}: ${peer.stderr}`);
      await assert.rejects(client.lookup(name), /unknown peer/, `${name} unregistered`);
    }
  };
  try {
    await Promise.all([0, 1, 2].map(loop));
    // serve-registry announces itself through the same helper.
    const server = startCli(['serve-registry', '--host', '127.0.0.1', '--port', '0', '--stun-port', '0'], { cwd: dir });
    await server.waitForLine(/registry listening on/, 30_000);
    server.proc.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null }, server.stderr);
  } finally {
    await reg.close();
    await cleanup();
  }
});
