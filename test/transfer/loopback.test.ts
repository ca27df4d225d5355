// UDP transfers between two Endpoints in this process over loopback: byte-exact at the edge
// sizes and 64 MiB, two at once, resume from an offset, a vanished sender, strangers ignored.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { SecureConnection } from '../../src/net/connection';
import { encodeSealedHeader, FrameType } from '../../src/wire/frame';
import { encodeData } from '../../src/wire/transfer';
import { tempDir } from '../support/cli';
import { connectBoth, requesterEndpoint } from '../support/secure';
import { pair, randomFile, sessionId, sha256, transfer } from './support';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir('p2pshare-udp-')));
after(async () => cleanup());

for (const size of [0, 1, 1200, 1201, 1024 * 1024, 64 * 1024 * 1024]) {
  test(`byte-exact over loopback: ${size} B`, async () => {
    const src = join(dir, `src-${size}`);
    const digest = await randomFile(src, size);
    const p = await pair();
    try {
      const r = await transfer(p, src, size, dir);
      assert.equal(r.received.bytes, size);
      assert.equal(r.sent.bytes, size);
      assert.equal((await stat(r.partPath)).size, size);
      assert.equal(await sha256(r.partPath), digest);
      assert.equal(p.ownerUdp.activeSends, 0);
      assert.equal(p.requesterUdp.activeReceives, 0);
    } finally {
      await p.close();
    }
  });
}

test('two transfers at once from one owner, both byte-exact', async () => {
  const a = join(dir, 'two-a');
  const b = join(dir, 'two-b');
  const [da, db] = await Promise.all([randomFile(a, 6 * 1024 * 1024 + 17), randomFile(b, 5 * 1024 * 1024 + 3)]);
  const p = await pair();
  // A second requester socket, as a second peer would have, with its own session.
  const other = await requesterEndpoint();
  const { UdpTransfers } = await import('../../src/transfer/udp/index');
  const otherUdp = new UdpTransfers(other);
  const { toOwner: otherToOwner, toRequester: ownerToOther } = await connectBoth(other, p.ownerSide);
  try {
    const idA = sessionId();
    const idB = sessionId();
    const partA = join(dir, 'two-a.part');
    const partB = join(dir, 'two-b.part');
    const sizeA = (await stat(a)).size;
    const sizeB = (await stat(b)).size;
    const recvA = p.requesterUdp.receive({ conn: p.toOwner, sessionId: idA, partPath: partA, offset: 0, size: sizeA });
    const recvB = otherUdp.receive({ conn: otherToOwner, sessionId: idB, partPath: partB, offset: 0, size: sizeB });
    const sendA = p.ownerUdp.send({ conn: p.toRequester, sessionId: idA, path: a, offset: 0, size: sizeA, maxPayload: 1200 });
    const sendB = p.ownerUdp.send({ conn: ownerToOther, sessionId: idB, path: b, offset: 0, size: sizeB, maxPayload: 1200 });
    assert.equal(p.ownerUdp.activeSends, 2);
    await Promise.all([recvA, recvB, sendA, sendB]);
    assert.equal(await sha256(partA), da);
    assert.equal(await sha256(partB), db);
  } finally {
    await other.close();
    await p.close();
  }
});

test('resume: an existing .part keeps its first bytes, receives the rest, and loses any stale tail', async () => {
  const size = 3 * 1024 * 1024 + 5;
  const src = join(dir, 'resume-src');
  const digest = await randomFile(src, size);
  const offset = 1_000_003;
  const part = join(dir, 'resume.part');
  // The prefix, then stale bytes past the end of the file: the receiver must not keep them.
  await writeFile(part, Buffer.concat([(await readFile(src)).subarray(0, offset), Buffer.alloc(size, 0x55)]));
  const p = await pair();
  try {
    const r = await transfer(p, src, size, dir, { offset, partName: 'resume.part' });
    assert.equal(r.received.bytes, size - offset);
    assert.equal(await sha256(part), digest);
  } finally {
    await p.close();
  }
});

test('sender vanishes mid-transfer: the receiver fails within the idle timeout with one line, .part keeps a correct prefix', async () => {
  const size = 16 * 1024 * 1024;
  const src = join(dir, 'vanish-src');
  await randomFile(src, size);
  const idleTimeoutMs = 1500;
  // A rate-limited relay keeps the transfer slow enough to cut it in the middle.
  const p = await pair({ toClient: { rateMbit: 40, seed: 9 }, idleTimeoutMs });
  try {
    const id = sessionId();
    const part = join(dir, 'vanish.part');
    let progress = 0;
    const recv = p.requesterUdp.receive({ conn: p.toOwner, sessionId: id, partPath: part, offset: 0, size, onProgress: (n) => (progress = n) });
    const sent = p.ownerUdp.send({ conn: p.toRequester, sessionId: id, path: src, offset: 0, size, maxPayload: 1200 });
    sent.catch(() => {});
    const deadline = Date.now() + 20_000;
    while (progress < 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(progress >= 1024 * 1024, 'the transfer never got going');
    await p.owner.close(); // the owner process is gone: no more DATA, no ABORT
    const cutAt = Date.now();
    const err: Error = await recv.then(
      () => assert.fail('the receive should have failed'),
      (e: Error) => e,
    );
    const waited = Date.now() - cutAt;
    assert.match(err.message, /^no data from peer for 1\.5 s \(idle timeout\)$/);
    assert.ok(waited >= idleTimeoutMs - 50 && waited < idleTimeoutMs + 5000, `failed after ${waited} ms`);
    const kept = await readFile(part);
    assert.ok(kept.length >= 1024 * 1024 && kept.length < size, `.part holds ${kept.length} bytes`);
    const original = Buffer.alloc(kept.length);
    const fh = await open(src, 'r');
    await fh.read(original, 0, kept.length, 0);
    await fh.close();
    assert.ok(kept.equals(original), 'the .part is not a prefix of the file (a hole would break the resume)');
    assert.equal(p.requesterUdp.activeReceives, 0);
  } finally {
    await p.close();
  }
});

test('receiver vanishes mid-transfer: the sender fails within the idle timeout with one line', async () => {
  const size = 16 * 1024 * 1024;
  const src = join(dir, 'gone-src');
  await randomFile(src, size);
  const idleTimeoutMs = 1200;
  const p = await pair({ toClient: { rateMbit: 40, seed: 10 }, idleTimeoutMs });
  try {
    const id = sessionId();
    let progress = 0;
    const recv = p.requesterUdp.receive({ conn: p.toOwner, sessionId: id, partPath: join(dir, 'gone.part'), offset: 0, size, onProgress: (n) => (progress = n) });
    recv.catch(() => {});
    const sent = p.ownerUdp.send({ conn: p.toRequester, sessionId: id, path: src, offset: 0, size, maxPayload: 1200 });
    const deadline = Date.now() + 20_000;
    while (progress < 512 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(progress >= 512 * 1024, 'the transfer never got going');
    await p.requester.close();
    const cutAt = Date.now();
    const err: Error = await sent.then(
      () => assert.fail('the send should have failed'),
      (e: Error) => e,
    );
    const waited = Date.now() - cutAt;
    assert.match(err.message, /^no acknowledgement from peer for 1\.2 s \(idle timeout\)$/);
    assert.ok(waited >= idleTimeoutMs - 50 && waited < idleTimeoutMs + 5000, `failed after ${waited} ms`);
    assert.equal(p.ownerUdp.activeSends, 0);
  } finally {
    await p.close();
  }
});

test('closing an endpoint ends its sessions at once (no timer left running to the idle timeout)', async () => {
  const size = 8 * 1024 * 1024;
  const src = join(dir, 'close-src');
  await randomFile(src, size);
  const p = await pair({ toClient: { rateMbit: 20, seed: 12 } });
  try {
    const id = sessionId();
    const recv = p.requesterUdp.receive({ conn: p.toOwner, sessionId: id, partPath: join(dir, 'close.part'), offset: 0, size });
    const sent = p.ownerUdp.send({ conn: p.toRequester, sessionId: id, path: src, offset: 0, size, maxPayload: 1200 });
    await new Promise((r) => setTimeout(r, 200));
    let started = Date.now();
    await p.owner.close();
    await assert.rejects(sent, /^Error: transfer stopped: the UDP socket was closed$/);
    assert.ok(Date.now() - started < 1000);
    assert.equal(p.ownerUdp.activeSends, 0);
    started = Date.now();
    await p.requester.close();
    await assert.rejects(recv, /^Error: transfer stopped: the UDP socket was closed$/);
    assert.ok(Date.now() - started < 3000);
    assert.equal(p.requesterUdp.activeReceives, 0);
  } finally {
    await p.close();
  }
});

test('datagrams of another session, forged from another address, or malformed are ignored and counted; the transfer is still exact', async () => {
  const size = 2 * 1024 * 1024;
  const src = join(dir, 'stray-src');
  const digest = await randomFile(src, size);
  const p = await pair();
  const stranger = await requesterEndpoint();
  try {
    const id = sessionId();
    const part = join(dir, 'stray.part');
    const recv = p.requesterUdp.receive({ conn: p.toOwner, sessionId: id, partPath: part, offset: 0, size });
    const to = { address: '127.0.0.1', port: p.requester.port };
    const junk = Buffer.alloc(1200, 0xee);
    const before = { ...p.requester.drops };
    for (let i = 0; i < 300; i++) {
      // Forged: addressed to the requester's connection, but sealed with no key it holds.
      stranger.sendRaw(Buffer.concat([encodeSealedHeader((p.toOwner as SecureConnection).localIndex, 1_000_000 + i), junk]), to);
      // The owner's own connection, another (stale) session: ignored as well.
      p.toRequester.send(FrameType.data, (id + 1) >>> 0, encodeData({ packetNumber: i, chunk: 0, sendTimeUs: 0 }, junk));
      // Noise: a clear frame that is not one.
      stranger.sendRaw(randomBytes(12 + (i % 40)), to);
      // Let the requester read them: a burst would overflow its socket buffer (rmem_max), not be refused.
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(p.requester.drops.bad_auth - before.bad_auth >= 300, `only ${p.requester.drops.bad_auth - before.bad_auth} refused as unauthenticated`);
    assert.ok(p.requester.drops.rejected - before.rejected >= 300, `only ${p.requester.drops.rejected - before.rejected} stale-session frames rejected`);
    const sent = p.ownerUdp.send({ conn: p.toRequester, sessionId: id, path: src, offset: 0, size, maxPayload: 1200 });
    await Promise.all([recv, sent]);
    assert.equal(await sha256(part), digest);
  } finally {
    await stranger.close();
    await p.close();
  }
});

test('cancel ends a receive at once with a clear error; an unusable max payload is refused', async () => {
  const p = await pair();
  try {
    const id = sessionId();
    const recv = p.requesterUdp.receive({ conn: p.toOwner, sessionId: id, partPath: join(dir, 'cancel.part'), offset: 0, size: 10_000 });
    p.requesterUdp.cancel(id);
    await assert.rejects(recv, /^Error: transfer cancelled$/);
    assert.equal(p.requesterUdp.activeReceives, 0);
    // The owner refuses a max payload it cannot use, and says so: the requester ends at once.
    const id2 = sessionId();
    const recv2 = p.requesterUdp.receive({ conn: p.toOwner, sessionId: id2, partPath: join(dir, 'small.part'), offset: 0, size: 10_000 });
    await assert.rejects(p.ownerUdp.send({ conn: p.toRequester, sessionId: id2, path: join(dir, 'none'), offset: 0, size: 10_000, maxPayload: 10 }), /^Error: max payload 10 is too small \(at least 64 bytes\)$/);
    await assert.rejects(recv2, /^Error: sender aborted the transfer \(bad request\)$/);
  } finally {
    await p.close();
  }
});
