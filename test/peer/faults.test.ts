// Faults: an owner killed mid-transfer (then resumed), an offline owner, a registry restart,
// and a flood of hostile datagrams at a peer's port.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { ControlClient } from '../../src/control/client';
import { Peer } from '../../src/peer/peer';
import { ShareIndex } from '../../src/peer/share';
import { RegistryClient } from '../../src/registry/client';
import { encodeSealedHeader } from '../../src/wire/frame';
import { Initiator } from '../../src/net/handshake';
import { PrivateKey } from '../../src/core/x25519';
import { runCli, startCli, tempDir } from '../support/cli';
import { connectToPeer, randomFile, registry, sha256, startPeer } from './support';

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('owner killed mid-transfer: one clear error, .part kept; the next get resumes byte-exact', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry({ ttl: 2 });
  try {
    const size = 256 * 1024 * 1024;
    const digest = await randomFile(join(dir, 'share', 'big.bin'), size);
    let owner = (await startPeer('owner', reg.url, join(dir, 'share'))).cli;
    const downloads = join(dir, 'dl');
    const getting = startCli(['get', 'owner', 'big.bin', '--registry', reg.url, '--downloads', downloads]);
    const part = await waitFor('a growing .part', async () => {
      const f = (await readdir(downloads)).find((n) => n.endsWith('.part'));
      return f && (await stat(join(downloads, f))).size > 4 * 1024 * 1024 ? join(downloads, f) : undefined;
    }, 30_000);
    // Freeze the requester so the transfer cannot finish, kill the owner, then let it see that.
    getting.proc.kill('SIGSTOP');
    owner.proc.kill('SIGKILL');
    await owner.exited;
    getting.proc.kill('SIGCONT');
    const { code } = await getting.exited;
    assert.equal(code, 1, getting.stderr);
    assert.equal(getting.stderr.trim().split('\n').length, 1, getting.stderr);
    assert.match(getting.stderr, /failed|closed|reset/);
    const kept = (await stat(part)).size;
    assert.ok(kept > 0 && kept < size, `the .part keeps ${kept} bytes`);
    assert.deepEqual((await readdir(downloads)).filter((n) => n === 'big.bin'), [], 'nothing under the final name');

    // The killed owner never unregistered: its name is free once the TTL has run out.
    const client = new RegistryClient(reg.url);
    await waitFor('the dead registration to expire', async () => ((await client.list()).some((p) => p.name === 'owner') ? undefined : true), 10_000);
    owner = (await startPeer('owner', reg.url, join(dir, 'share'))).cli;
    try {
      const res = await runCli(['get', 'owner', 'big.bin', '--registry', reg.url, '--downloads', downloads, '--json'], { timeoutMs: 120_000 });
      assert.equal(res.code, 0, res.stderr);
      const out = JSON.parse(res.stdout);
      assert.equal(out.resumedFrom, kept);
      assert.ok(out.bytesTransferred < size, `only ${out.bytesTransferred} of ${size} bytes crossed the wire`);
      assert.equal(out.path, join(downloads, 'big.bin'));
      assert.equal(await sha256(out.path), digest);
    } finally {
      await owner.stop();
    }
  } finally {
    await reg.close();
    await cleanup();
  }
});

test('an owner that does not answer is reported offline (exit 3) within 5 s', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry();
  try {
    await randomFile(join(dir, 'a.txt'), 10);
    const owner = (await startPeer('frozen', reg.url, dir)).cli;
    owner.proc.kill('SIGSTOP');
    try {
      for (const args of [['files', 'frozen'], ['get', 'frozen', 'a.txt', '--downloads', join(dir, 'dl')]]) {
        const t0 = Date.now();
        const res = await runCli([...args, '--registry', reg.url], { timeoutMs: 20_000 });
        const ms = Date.now() - t0;
        assert.equal(res.code, 3, res.stderr);
        assert.match(res.stderr, /offline/);
        assert.ok(ms < 5000, `reported after ${ms} ms`);
      }
    } finally {
      owner.proc.kill('SIGCONT');
      await owner.stop();
    }
  } finally {
    await reg.close();
    await cleanup();
  }
});

test('a registry restart (memory store) is healed by the peer re-registering by itself', async () => {
  const { dir, cleanup } = await tempDir();
  let reg = await registry({ ttl: 2 });
  const port = reg.port;
  const owner = (await startPeer('phoenix', reg.url, dir)).cli;
  try {
    await reg.close();
    reg = await registry({ ttl: 2, port });
    const client = new RegistryClient(reg.url);
    assert.equal((await client.list()).length, 0, 'the new registry starts empty');
    await waitFor('phoenix to re-register', async () => ((await client.list()).some((p) => p.name === 'phoenix') ? true : undefined), 10_000);
    const files = await runCli(['files', 'phoenix', '--registry', reg.url, '--json']);
    assert.equal(files.code, 0, files.stderr);
  } finally {
    await owner.stop();
    await reg.close();
    await cleanup();
  }
});

test('a taken name exits 3; the peer unregisters on SIGTERM', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry();
  try {
    const first = (await startPeer('Carol', reg.url, dir)).cli;
    // Another key (every CLI of this file shares one identity unless told otherwise).
    const second = await runCli(['peer', '--name', 'carol', '--registry', reg.url, '--no-interactive', '--identity', join(dir, 'other.identity')], { cwd: dir });
    assert.equal(second.code, 3);
    assert.match(second.stderr, /taken/);
    assert.equal(await first.stop('SIGTERM'), 0);
    assert.deepEqual(await new RegistryClient(reg.url).list(), []);
  } finally {
    await reg.close();
    await cleanup();
  }
});

test('100,000 hostile datagrams at a peer: dropped and counted, the peer keeps serving', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await registry();
  const digest = await randomFile(join(dir, 'x.bin'), 5000);
  const peer = await Peer.start({ name: 'target', registryUrl: reg.url, share: await ShareIndex.build([join(dir, 'x.bin')]), port: 0 });
  const blaster = dgram.createSocket('udp4');
  try {
    // A real HANDSHAKE_INIT for this peer's key, and a sealed frame for some index: mutated below.
    const init = new Initiator(PrivateKey.generate()).start({
      remotes: [{ address: '127.0.0.1', port: peer.port }],
      peerKey: peer.identity.publicKey,
      ownerName: 'target',
      isIndexFree: () => true,
      onKeys: () => {},
      onCookie: () => {},
    }).datagram;
    const valid = [init, Buffer.concat([encodeSealedHeader(12345, 0), randomBytes(200)])];
    for (let i = 0; i < 100_000; i++) {
      let d: Buffer;
      if (i % 3 === 0) d = randomBytes(i % 1600);
      else {
        d = Buffer.from(valid[i % 2]!);
        d[(i * 7) % d.length] ^= 1 + (i % 255); // breaks the CRC, the magic, the tag or the index
      }
      const sent = new Promise<void>((resolve) => blaster.send(d, peer.port, '127.0.0.1', () => resolve()));
      // Same process: every 100 datagrams, wait until they left and let the peer read them.
      if (i % 100 === 99) {
        await sent;
        for (let waited = 0; peer.endpoint.received <= i && waited < 100; waited++) await sleep(1);
      }
    }
    await sleep(300);
    const drops = peer.endpoint.drops;
    const dropped = Object.values(drops).reduce((a, b) => a + b, 0);
    assert.ok(peer.endpoint.received > 90_000, `received ${peer.endpoint.received}`);
    assert.ok(dropped >= peer.endpoint.received * 0.99, `dropped ${dropped} of ${peer.endpoint.received}: ${JSON.stringify(drops)}`);
    // Still serving: a real LIST from a real client.
    const { endpoint: ep, conn } = await connectToPeer(reg.url, 'target');
    try {
      const list = await new ControlClient(ep).list(conn, 'target');
      assert.deepEqual(list.map((f) => [f.name, f.sha256]), [['x.bin', digest]]);
    } finally {
      await ep.close();
    }
  } finally {
    blaster.close();
    await peer.stop();
    await reg.close();
    await cleanup();
  }
});
