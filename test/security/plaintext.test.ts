// No plaintext on the wire: whole `get`s over TCP and over UDP between real CLI peers, every byte
// both ways captured on the path (the owner's registration points at a UDP relay and a TCP proxy
// on the same port number, as a NAT's mapping would). No 16-byte window of the file, at any
// offset, appears in what was captured, nor its name or digest; the capture holds at least the
// file's size (the check is not vacuous), and the file arrives byte-exact. A file of random
// bytes, and one of zeros (whose only window, 16 zero bytes, any cleartext would show at once).
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, tempDir, type RunningCli } from '../support/cli';
import { relayAndProxy } from '../support/relay-and-proxy';
import { pointRegistration, randomFile, registry, startPeer } from '../peer/support';
import { FileWindows, findWindows, isInitMac, type Hit } from './support';

const MiB = 1024 * 1024;
/** Long enough to be a needle of its own (a listing in the clear would show it). */
const RANDOM_NAME = 'quarterly-figures-confidential.bin';
const ZEROS_NAME = 'all-zeros-disk-image-confidential.img';
const files = new Map<string, { data: Buffer; windows: FileWindows }>();

let reg: Awaited<ReturnType<typeof registry>>;
let owner: { cli: RunningCli; port: number };
let dir: string;
let cleanup: () => Promise<void>;

before(async () => {
  ({ dir, cleanup } = await tempDir('p2pshare-plaintext-'));
  reg = await registry({ ttl: 300 });
  const share = join(dir, 'share');
  await randomFile(join(share, RANDOM_NAME), 4 * MiB + 123); // a short last chunk and record
  await writeFile(join(share, ZEROS_NAME), Buffer.alloc(3 * MiB + 7));
  for (const name of [RANDOM_NAME, ZEROS_NAME]) {
    const data = await readFile(join(share, name));
    files.set(name, { data, windows: new FileWindows(data) });
  }
  owner = await startPeer('vault', reg.url, share);
});

after(async () => {
  await owner?.cli.stop();
  await reg?.close();
  await cleanup?.();
});

for (const via of ['tcp', 'udp'] as const) {
  for (const name of [RANDOM_NAME, ZEROS_NAME]) {
    test(`get over ${via.toUpperCase()} of ${name === RANDOM_NAME ? 'random bytes' : 'zeros'}: every byte captured both ways, no 16-byte window of the file in it`, async (t) => {
      const { data, windows } = files.get(name)!;
      const bound = 3 * data.length + 4 * MiB;
      const target = { address: '127.0.0.1', port: owner.port };
      const { relay, proxy } = await relayAndProxy({ target, capture: { maxBytes: bound } }, { target, capture: { maxBytes: bound } });
      try {
        await pointRegistration(reg.url, 'vault', relay.port);
        const downloads = join(dir, `dl-${via}-${name}`);
        const res = await runCli(['get', 'vault', name, '--via', via, '--registry', reg.url, '--downloads', downloads, '--json'], { timeoutMs: 120_000 });
        assert.equal(res.code, 0, res.stderr);
        const out = JSON.parse(res.stdout) as { path: string; via: string; sha256: string };
        assert.equal(out.via, via);
        assert.ok((await readFile(out.path)).equals(data), 'the file arrived byte-exact');

        const udp = relay.capture!;
        const tcp = proxy.capture!;
        assert.equal(udp.missedBytes + tcp.missedBytes, 0, 'nothing escaped the capture');
        // Everything crossed the path we watched: the file's bytes went owner -> requester there.
        const carried = via === 'udp' ? udp.bytesTo('toClient') : tcp.bytesTo('toClient');
        assert.ok(carried >= data.length, `the capture holds ${carried} bytes owner -> requester for a ${data.length}-byte file`);
        if (via === 'tcp') assert.equal(proxy.counters.connections, 1, 'the file came over the proxied TCP connection');

        const units = [
          ...udp.entries.map((e, i) => ({ label: `UDP datagram ${i} ${e.direction}`, data: e.data })),
          ...tcp.streams().flatMap((n) =>
            (['toTarget', 'toClient'] as const).map((d) => ({ label: `TCP connection ${n} ${d}`, data: Buffer.concat(tcp.pieces(d, n)) })),
          ),
        ];
        // The search finds what is there: a window of the file planted among random bytes.
        const k = randomInt(0, data.length - 16);
        const planted = findWindows(windows, [{ label: 'planted', data: Buffer.concat([randomBytes(100), data.subarray(k, k + 16), randomBytes(100)]) }]);
        assert.ok(planted.some((h) => h.at === 100), 'the search missed a planted window');
        const hits = findWindows(windows, units);
        // The zeros' one window also matches an INIT's mac2, which is 16 zero bytes by definition
        // (no cookie yet) and carries nothing of the file: allowed there, nowhere else.
        const leaks = hits.filter((h) => !(name === ZEROS_NAME && isInitMac(h)));
        assert.deepEqual(leaks.map(describe), [], 'windows of the file in the capture');
        if (name === RANDOM_NAME) assert.equal(hits.length, 0);
        assert.ok(windows.distinct === (name === ZEROS_NAME ? 1 : data.length - 15), `${windows.distinct} distinct windows searched`);

        // The listing travelled sealed too: neither the name nor the digest shows.
        const digest = createHash('sha256').update(data).digest();
        for (const needle of [Buffer.from(name), digest, Buffer.from(digest.toString('hex'))]) {
          assert.ok(!units.some((u) => u.data.includes(needle)), `${needle.length}-byte needle (name or digest) found in the capture`);
        }
        assert.equal(out.sha256, digest.toString('hex'));
        t.diagnostic(`captured ${udp.bytes} B in ${udp.entries.length} datagrams, ${tcp.bytes} B over ${tcp.streams().length} TCP connection(s); ${carried} B owner -> requester; ${hits.length} window hit(s), all at INIT mac2`);
      } finally {
        await proxy.close();
        await relay.close();
      }
    });
  }
}

function describe(h: Hit): string {
  return `${h.label} at ${h.at}`;
}
