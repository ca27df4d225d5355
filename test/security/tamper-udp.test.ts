// Bits flipped in UDP datagrams mid-transfer (the relay flips 1-3 random bits of a copy and
// forwards the copy instead of the original): every damaged datagram is dropped and counted by
// the endpoint that receives it (bad_auth, or bad_magic/bad_checksum when the flip hit the clear
// header), whatever part of the frame the flip hit: header, counter, ciphertext or tag; none
// gets through; the transfer recovers them as losses and ends byte-exact. The same between real
// CLI peers.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DropCounters } from '../../src/net/endpoint';
import { SEALED_HEADER_BYTES, TAG_BYTES } from '../../src/wire/frame';
import { runCli, tempDir } from '../support/cli';
import type { RelayCounters } from '../support/relay';
import { peerBehindRelay, randomFile, registry } from '../peer/support';
import { pair, transfer } from '../transfer/support';

const MiB = 1024 * 1024;
let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir('p2pshare-tamper-udp-')));
after(async () => cleanup());

/** Datagrams dropped as damaged: every counter but `rejected` (stale or unwanted messages that did authenticate). */
function damaged(d: DropCounters): number {
  return Object.entries(d).reduce((n, [k, v]) => (k === 'rejected' ? n : n + v), 0);
}

/** Which part of a sealed frame a flipped bit hit. */
function region(bit: number, bytes: number): 'header' | 'counter' | 'ciphertext' | 'tag' {
  if (bit < 8 * 8) return 'header';
  if (bit < SEALED_HEADER_BYTES * 8) return 'counter';
  return bit < (bytes - TAG_BYTES) * 8 ? 'ciphertext' : 'tag';
}

test('10 % of datagrams both ways with flipped bits, anywhere in the frame: each dropped and counted by its receiver, none accepted, byte-exact', async (t) => {
  const size = 4 * MiB + 17;
  const src = join(dir, 'src.bin');
  await randomFile(src, size);
  const p = await pair({ toClient: { corruptPercent: 10, seed: 101 }, toTarget: { corruptPercent: 10, seed: 102 } });
  try {
    const relay = p.relay!;
    // From here on: the handshake (maybe retried through the corruption) is behind us.
    const start = {
      requester: { drops: { ...p.requester.drops }, received: p.requester.received },
      owner: { drops: { ...p.owner.drops }, received: p.owner.received },
      toClient: { ...relay.counters.toClient },
      toTarget: { ...relay.counters.toTarget },
      flips: { toClient: relay.flips.toClient.length, toTarget: relay.flips.toTarget.length },
    };
    const r = await transfer(p, src, size, dir);
    assert.ok((await readFile(r.partPath)).equals(await readFile(src)), 'byte-exact');
    await new Promise((res) => setTimeout(res, 200)); // the last DONEs and ACKs land

    const check = (name: string, link: RelayCounters, was: RelayCounters, ep: { drops: DropCounters; received: number }, before: typeof start.owner) => {
      const corrupted = link.corrupted - was.corrupted;
      // Datagrams the relay sent that the receiver's socket never read (kernel buffer full): known, and 0 as a rule.
      const unread = link.forwarded - was.forwarded - (ep.received - before.received);
      const dropped = damaged(ep.drops) - damaged(before.drops);
      t.diagnostic(`${name}: ${corrupted} corrupted, ${dropped} dropped as damaged (${unread} unread), bad_auth ${ep.drops.bad_auth - before.drops.bad_auth}`);
      assert.ok(unread >= 0 && unread < corrupted / 10, `${unread} datagrams unread by the ${name}`);
      assert.ok(dropped <= corrupted, `the ${name} dropped ${dropped} as damaged, but only ${corrupted} were`);
      assert.ok(dropped >= corrupted - unread, `the ${name} let ${corrupted - unread - dropped} damaged datagrams through`);
      assert.ok(ep.drops.bad_auth - before.drops.bad_auth > corrupted / 2, 'most failed authentication');
      return corrupted;
    };
    const data = check('requester', relay.counters.toClient, start.toClient, p.requester, start.requester);
    const acks = check('owner', relay.counters.toTarget, start.toTarget, p.owner, start.owner);
    assert.ok(data >= 250, `only ${data} DATA datagrams corrupted`);
    assert.ok(acks >= 20, `only ${acks} ACK datagrams corrupted`);
    assert.ok(r.sent.retransmitted >= 0.9 * data, `${r.sent.retransmitted} retransmitted for ${data} damaged`);

    // The flips landed in every part of the frames: the clear header, the counter, the ciphertext, the tag.
    const hit = { header: 0, counter: 0, ciphertext: 0, tag: 0 };
    for (const f of [...relay.flips.toClient.slice(start.flips.toClient), ...relay.flips.toTarget.slice(start.flips.toTarget)]) {
      for (const bit of f.bits) hit[region(bit, f.bytes)]++;
    }
    t.diagnostic(`bits flipped by region: ${JSON.stringify(hit)}`);
    for (const [k, n] of Object.entries(hit)) assert.ok(n > 0, `no flip hit the ${k}`);
  } finally {
    await p.close();
  }
});

test('CLI peers, 5 % of datagrams both ways with flipped bits: get --via udp ends byte-exact, and the relay really corrupted them', async () => {
  const reg = await registry({ ttl: 300 });
  const share = join(dir, 'share');
  await randomFile(join(share, 'noisy.bin'), 4 * MiB + 1);
  const owner = await peerBehindRelay('noisy', reg.url, share, { toClient: { corruptPercent: 5, seed: 201 }, toTarget: { corruptPercent: 5, seed: 202 } });
  try {
    const res = await runCli(['get', 'noisy', 'noisy.bin', '--via', 'udp', '--registry', reg.url, '--downloads', join(dir, 'dl'), '--json'], { timeoutMs: 120_000 });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { path: string; via: string };
    assert.equal(out.via, 'udp');
    assert.ok((await readFile(out.path)).equals(await readFile(join(share, 'noisy.bin'))), 'byte-exact');
    assert.ok(owner.relay.counters.toClient.corrupted >= 100, `only ${owner.relay.counters.toClient.corrupted} DATA corrupted`);
    assert.ok(owner.relay.counters.toTarget.corrupted >= 5, `only ${owner.relay.counters.toTarget.corrupted} ACKs corrupted`);
  } finally {
    await owner.stop();
    await reg.close();
  }
});
