// Path MTU discovery end to end (PROTOCOL.md 6.10): a real `get --via udp` process fetches from an
// owner process reached through the test relay emulating a 1400-byte MTU link. The relay drops the
// larger probes (counted), the GET asks for what 1372-byte datagrams hold, the DATA crosses in
// datagrams of exactly that size and none is too large, and the file is byte-exact.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, tempDir } from '../support/cli';
import { pointRegistration, randomFile, registry, sha256, startPeer } from '../peer/support';
import { UdpRelay } from '../support/relay';

const MiB = 1024 * 1024;
const SIZE = 3 * MiB + 5;
const DATAGRAM = 1400 - 28;
const CHUNK = DATAGRAM - 37 - 12;

let reg: Awaited<ReturnType<typeof registry>>;
let dir: string;
let cleanup: () => Promise<void>;
let digest: string;

before(async () => {
  ({ dir, cleanup } = await tempDir('p2pshare-pmtu-cli-'));
  reg = await registry({ ttl: 300 });
  digest = await randomFile(join(dir, 'share', 'file.bin'), SIZE);
});

after(async () => {
  await reg?.close();
  await cleanup?.();
});

test('get --via udp through a 1400-byte MTU relay: probes above it dropped, DATA in 1372-byte datagrams, byte-exact', async () => {
  const peer = await startPeer('small-mtu', reg.url, join(dir, 'share'));
  const relay = await UdpRelay.start({ target: { address: '127.0.0.1', port: peer.port }, toTarget: { mtu: 1400 }, toClient: { mtu: 1400 }, capture: { maxBytes: 16 * MiB } });
  try {
    await pointRegistration(reg.url, 'small-mtu', relay.port);
    const res = await runCli(['get', 'small-mtu', 'file.bin', '--via', 'udp', '--registry', reg.url, '--downloads', join(dir, 'dl'), '--json'], { timeoutMs: 120_000 });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { path: string; via: string };
    assert.equal(out.via, 'udp');
    assert.equal(await sha256(out.path), digest);
    const c = relay.counters;
    assert.equal(relay.capture!.missedBytes, 0);
    const sizes = new Map<number, number>();
    for (const d of relay.capture!.pieces('toClient')) sizes.set(d.length, (sizes.get(d.length) ?? 0) + 1);
    assert.ok(c.toTarget.tooBig >= 1, 'the relay dropped the larger probes');
    assert.equal(c.toClient.tooBig, 0, 'nothing the owner sent was too large for the path');
    assert.ok((sizes.get(DATAGRAM) ?? 0) >= Math.floor(SIZE / CHUNK), `DATA went in ${DATAGRAM}-byte datagrams: ${JSON.stringify([...sizes].filter(([, n]) => n > 10))}`);
    // The capture sees datagrams as they reach the relay, before its MTU check.
    assert.equal(Math.max(...sizes.keys()), DATAGRAM, 'no datagram towards the requester above the discovered size');
  } finally {
    await relay.close();
    await peer.cli.stop();
  }
});
