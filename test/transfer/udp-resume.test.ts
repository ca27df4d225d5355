// UDP resume on par with TCP (PROTOCOL.md section 7, "Resuming a UDP receive"): `kill -9` of
// either side mid-transfer, then the same `get` again, resumes, and only the rest (plus less than
// 1 MiB) travels. Real processes: an owner peer behind a rate-limited relay (so the kill lands
// mid-transfer, proved by the .part's size) and `get` as a CLI. Also the resume record's rules
// (same boot, another boot, garbled) through openPart.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, startCli, tempDir } from '../support/cli';
import { UdpRelay } from '../support/relay';
import { pointRegistration, randomFile, registry, sha256, startPeer } from '../peer/support';
import { openPart } from '../../src/transfer/download';
import { bootId, encodeRecord, readRecord, recordPath, type ResumeRecord } from '../../src/transfer/resume-record';
import { SYNC_EVERY_BYTES } from '../../src/transfer/udp/prefix-recorder';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB + 3;
// 160 Mbit/s: the 64 MiB take about 3.5 s, so a kill at a third or half of it is mid-way. The
// queue is large enough that the relay drops nothing: chunks land in order, and the .part's
// length at the kill is the bytes that had arrived.
const SLOW_LINK = { rateMbit: 160, queueBytes: 64 * MiB };

let reg: Awaited<ReturnType<typeof registry>>;
let dir: string;
let share: string;
let digest: string;
let cleanup: () => Promise<void>;

before(async () => {
  ({ dir, cleanup } = await tempDir('p2pshare-udp-resume-'));
  reg = await registry({ ttl: 300 });
  share = join(dir, 'share');
  digest = await randomFile(join(share, 'big.bin'), SIZE);
});

after(async () => {
  await reg?.close();
  await cleanup?.();
});

/** `p2pshare peer NAME` sharing big.bin, registered at a slow relay in front of it. */
async function slowOwner(name: string) {
  const peer = await startPeer(name, reg.url, share);
  const relay = await UdpRelay.start({ target: { address: '127.0.0.1', port: peer.port }, toClient: SLOW_LINK });
  await pointRegistration(reg.url, name, relay.port);
  const stop = async () => {
    await relay.close();
    await peer.cli.stop();
  };
  return { cli: peer.cli, relay, stop };
}

async function partIn(downloads: string): Promise<string | undefined> {
  const names = await readdir(downloads).catch(() => [] as string[]);
  const part = names.find((n) => n.endsWith('.part'));
  return part && join(downloads, part);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** SHA-256 of the first `n` bytes of a file (streamed). */
async function prefixDigest(path: string, n: number): Promise<string> {
  const hash = createHash('sha256');
  if (n > 0) for await (const c of createReadStream(path, { start: 0, end: n - 1 })) hash.update(c as Buffer);
  return hash.digest('hex');
}

function getArgs(peer: string, downloads: string): string[] {
  return ['get', peer, 'big.bin', '--via', 'udp', '--registry', reg.url, '--downloads', downloads, '--json'];
}

interface GetJson {
  path: string;
  via: string;
  resumedFrom: number;
  bytesTransferred: number;
}

test('kill -9 of the requester mid-UDP-transfer: the same get resumes from the recorded prefix; only the rest (+ < 1 MiB) travels', async (t) => {
  const owner = await slowOwner('owner-a');
  try {
    const downloads = join(dir, 'dl-requester-killed');
    const get = startCli(getArgs('owner-a', downloads));
    // Killed once the receiver has fsynced a first stretch (so the power-cut point moved too).
    const { part, rec: seen } = await until('a resume record with a synced prefix', async () => {
      const part = await partIn(downloads);
      const rec = part && (await readRecord(recordPath(part)));
      return part && rec && rec.synced > 0 ? { part, rec } : undefined;
    });
    assert.equal(await get.stop('SIGKILL'), null, 'killed, not finished');
    const killedAt = (await stat(part)).size;
    assert.ok(killedAt >= seen.written && killedAt < SIZE, `the kill landed mid-transfer: .part of ${killedAt} bytes`);
    const rec = (await readRecord(recordPath(part)))!;
    assert.ok(rec, 'the resume record survives the kill');
    assert.equal(rec.boot, await bootId());
    assert.ok(rec.synced >= SYNC_EVERY_BYTES && rec.synced <= rec.written, JSON.stringify(rec));
    assert.ok(rec.written >= killedAt - MiB, `the record lags the .part by ${killedAt - rec.written} bytes`);
    assert.equal(await prefixDigest(part, rec.written), await prefixDigest(join(share, 'big.bin'), rec.written), 'every byte the record vouches for is the owner\'s');

    const wireBefore = owner.relay.counters.toClient.bytesForwarded;
    const res = await runCli(getArgs('owner-a', downloads), { timeoutMs: 120_000 });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as GetJson;
    const remaining = SIZE - killedAt;
    assert.equal(out.via, 'udp');
    // The recorded prefix, extended by listed writes found in the file (their completion unseen).
    assert.ok(out.resumedFrom >= rec.written && out.resumedFrom <= killedAt, `resumed from ${out.resumedFrom}`);
    assert.ok(out.bytesTransferred <= remaining + MiB, `${out.bytesTransferred} bytes asked for, ${remaining} remained`);
    // What really crossed the link: the rest, with datagram headers and a few retransmissions.
    const wire = owner.relay.counters.toClient.bytesForwarded - wireBefore;
    assert.ok(wire <= (remaining + MiB) * 1.25, `${wire} bytes crossed the link for ${remaining} remaining`);
    assert.equal(await sha256(out.path), digest);
    assert.deepEqual(await readdir(downloads), ['big.bin'], 'no .part, lock or record left behind');
    t.diagnostic(`killed at ${killedAt} B (record: written ${rec.written}, synced ${rec.synced}, ${rec.writes?.length} writes listed); resumed from ${out.resumedFrom}; rerun asked ${out.bytesTransferred} B, ${wire} B on the wire, ${remaining} remained`);
  } finally {
    await owner.stop();
  }
});

test('kill -9 of the owner mid-UDP-transfer: the requester fails in one line (idle timeout), keeps a true prefix; the rerun against the restarted owner resumes it', async () => {
  const owner = await slowOwner('owner-b');
  const downloads = join(dir, 'dl-owner-killed');
  const get = startCli(getArgs('owner-b', downloads));
  let restarted: Awaited<ReturnType<typeof startPeer>> | undefined;
  try {
    const part = await until('a .part of 8 MiB', async () => {
      const part = await partIn(downloads);
      return part && (await stat(part)).size >= 8 * MiB ? part : undefined;
    });
    owner.cli.proc.kill('SIGKILL');
    assert.equal((await owner.cli.exited).signal, 'SIGKILL');
    const { code } = await get.exited; // the idle timeout (15 s) ends it
    assert.equal(code, 1, get.stderr);
    assert.equal(get.stderr.trim().split('\n').length, 1, get.stderr);
    assert.match(get.stderr, /no data from peer for \d+ s \(idle timeout\).*partial file kept; run again to resume/);
    const kept = (await stat(part)).size;
    assert.ok(kept >= 8 * MiB && kept < SIZE, `kept ${kept} bytes`);
    // Cut to its hole-free prefix and fsynced, the .part needs no record any more.
    assert.deepEqual(await readdir(downloads), [basename(part)], 'only the .part is left');
    assert.equal(await prefixDigest(part, kept), await prefixDigest(join(share, 'big.bin'), kept), 'the .part is exactly the start of the file');

    // The same identity reclaims its name at once; registered at its own port (no relay now).
    restarted = await startPeer('owner-b', reg.url, share);
    const res = await runCli(getArgs('owner-b', downloads), { timeoutMs: 120_000 });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as GetJson;
    assert.equal(out.resumedFrom, kept);
    assert.equal(out.bytesTransferred, SIZE - kept);
    assert.equal(await sha256(out.path), digest);
    assert.deepEqual(await readdir(downloads), ['big.bin']);
  } finally {
    await get.stop('SIGKILL');
    await owner.stop();
    await restarted?.cli.stop();
  }
});

test('openPart trusts a resume record for what it vouches: written in its own boot, synced after a reboot, nothing when garbled; no record: the length', async () => {
  const downloads = join(dir, 'dl-records');
  await mkdir(downloads, { recursive: true });
  const sha = 'ab'.repeat(32);
  const part = join(downloads, `x.bin.${sha.slice(0, 12)}.part`);
  const boot = await bootId();
  // Bytes a killed receive's last writes left in the file (its completion never seen).
  const tail = Buffer.from('0102030405060708', 'hex');
  const landed = { position: 70 * MiB, length: 4096, tail: tail.toString('hex') };
  const after = { position: 70 * MiB + 4096, length: 4096, tail: 'ffffffffffffffff' };
  const cases: Array<[string, ResumeRecord | Buffer | undefined, number]> = [
    ['same boot: written', { written: 70 * MiB, synced: 32 * MiB, boot }, 70 * MiB],
    ['same boot: written, and a listed write found in the file, not the next one (never landed)', { written: 70 * MiB, synced: 32 * MiB, boot, writes: [after, landed] }, 70 * MiB + 4096],
    ['another boot: a listed write counts for nothing', { written: 70 * MiB, synced: 32 * MiB, boot: 'another-boot-0000', writes: [landed] }, 32 * MiB],
    ['another boot (a power cut): only synced', { written: 70 * MiB, synced: 32 * MiB, boot: 'another-boot-0000' }, 32 * MiB],
    ['a record beyond the .part: the .part', { written: 120 * MiB, synced: 32 * MiB, boot }, 100 * MiB],
    ['garbled: nothing', Buffer.from(encodeRecord({ written: 70 * MiB, synced: 32 * MiB, boot }).toString().replace('7', '8')), 0],
    ['empty (an older version\'s marker, or a lost write): nothing', Buffer.alloc(0), 0],
    ['no record (TCP writes in order): the length', undefined, 100 * MiB],
  ];
  for (const [what, record, expected] of cases) {
    let synced = 0;
    await writeFile(part, '');
    await truncate(part, 100 * MiB); // sparse
    const fh = await open(part, 'r+');
    await fh.write(tail, 0, tail.length, landed.position + landed.length - tail.length);
    await fh.close();
    await rm(recordPath(part), { force: true });
    if (record !== undefined) await writeFile(recordPath(part), Buffer.isBuffer(record) ? record : encodeRecord(record));
    const p = await openPart(downloads, 'x.bin', 200 * MiB, sha);
    try {
      assert.equal(p.offset, expected, what);
      assert.equal((await stat(part)).size, expected, `${what}: the untrusted tail is cut off`);
      assert.equal(await readRecord(recordPath(part)), undefined, `${what}: the record is consumed`);
      await p.markUnordered();
      const next = await readRecord(recordPath(part));
      assert.ok(next, `${what}: markUnordered writes a record`);
      assert.equal(next.written, expected, `${what}: the next receive's record starts at the resume offset`);
      assert.ok(next.synced <= expected);
      synced = next.synced;
    } finally {
      await p.release();
    }
    // A kept .part keeps a record that does not vouch for all of it on disk; an empty one is
    // removed, and its record with it.
    assert.equal((await readRecord(recordPath(part))) !== undefined, expected > 0 && synced < expected, what);
  }
});
