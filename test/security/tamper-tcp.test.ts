// Bits flipped in the owner's TCP records on their way to the requester (the TCP proxy flips one
// bit at chosen offsets of a connection's stream, as corruption TCP's checksum missed or an
// on-path attacker would): the requester refuses the damaged record before writing a byte of it,
// keeps the authenticated prefix, asks again from there, and ends byte-exact; when every
// connection is tampered with it gives up with one clear line after 3 resumes, its .part a true
// prefix. Also a flip in a record's length field, wherever the record is: a resume, never a hang.
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Identity } from '../../src/crypto/identity';
import { fetchFile } from '../../src/peer/fetch';
import { RegistryClient } from '../../src/registry/client';
import { tcpRecordFailures } from '../../src/transfer/tcp-client';
import { runCli } from '../support/cli';
import { UdpRelay } from '../support/relay';
import { TcpProxy, type StreamCorruption } from '../support/tcp-proxy';
import { requesterIdentity } from '../peer/support';
import { authenticatedPrefix, ownerSharing, recordsOf } from './support';

const MiB = 1024 * 1024;
const SIZE = 4 * MiB + 5;
/** A record on the wire: length (2), at most 65,519 bytes of the file, tag (16); the reply's is 27 bytes. */
const REPLY = 27;
const FULL = 2 + 65_519 + 16;

let s: Awaited<ReturnType<typeof ownerSharing>>;
let file: Buffer;
let me: Identity;
let dir: string;

before(async () => {
  s = await ownerSharing('keeper', 'big.bin', SIZE);
  ({ file, dir } = s);
  me = await requesterIdentity(dir);
});

after(async () => s?.close());

/**
 * The owner reached through a relay (UDP) and a corrupting proxy (TCP) on one port number: its
 * registration points there, as a NAT's mapping would (re-registered with the owner's own key).
 */
async function tamperedPath(corruptToClient: StreamCorruption) {
  const target = { address: '127.0.0.1', port: s.owner.port };
  const relay = await UdpRelay.start({ target });
  const proxy = await TcpProxy.start({ target, port: relay.port, corruptToClient, capture: { maxBytes: 8 * SIZE } });
  await s.pointAt(relay.port);
  return {
    proxy,
    /** Connection n's stream from the owner, as the owner sent it (before the flip). */
    stream: (n: number) => Buffer.concat(proxy.capture!.pieces('toClient', n)),
    async close() {
      await proxy.close();
      await relay.close();
    },
  };
}

function fetchBig(downloads: string) {
  return fetchFile({ registry: new RegistryClient(s.reg.url), peer: 'keeper', identity: me, file: 'big.bin', via: 'tcp', downloads });
}

test('a bit flipped in one record of each of two TCP connections (CLI get): resumed twice from the authenticated prefix, byte-exact', async () => {
  const flipAt = REPLY + 10 * FULL + 1000; // inside the ciphertext of the 11th record of the file
  const path = await tamperedPath({ at: [flipAt], connections: 2, bit: 3 });
  try {
    const downloads = join(dir, 'dl-cli');
    const res = await runCli(['get', 'keeper', 'big.bin', '--via', 'tcp', '--registry', s.reg.url, '--downloads', downloads, '--json'], { timeoutMs: 60_000 });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { path: string; resumedFrom: number; bytesTransferred: number };
    assert.equal(path.proxy.counters.corrupted, 2, 'one bit flipped in each of the first two connections');
    assert.equal(path.proxy.counters.connections, 3, 'two resumes, each a new TCP connection');
    // What each damaged connection could authenticate: the records wholly before the flip.
    const kept = authenticatedPrefix(path.stream(1), flipAt) + authenticatedPrefix(path.stream(2), flipAt);
    assert.equal(kept, 2 * 10 * 65_519);
    assert.equal(out.resumedFrom, kept, 'the last GET asked from the authenticated prefix');
    assert.equal(out.bytesTransferred, SIZE - kept);
    assert.ok((await readFile(out.path)).equals(file), 'byte-exact');
    assert.deepEqual(await readdir(downloads), ['big.bin']);
  } finally {
    await path.close();
  }
});

test('a flip every 1.5 MiB of every connection (in process): each damaged record counted, two resumes, byte-exact', async () => {
  const every = 1.5 * MiB;
  const path = await tamperedPath({ everyBytes: every, bit: 0 });
  const before = tcpRecordFailures.badAuth;
  try {
    const res = await fetchBig(join(dir, 'dl-every'));
    const failures = tcpRecordFailures.badAuth - before;
    assert.equal(failures, 2, 'records refused by this requester');
    assert.equal(path.proxy.counters.connections, failures + 1, 'every refusal was followed by a resume');
    assert.ok(path.proxy.counters.corrupted >= failures);
    const kept = authenticatedPrefix(path.stream(1), every - 1) + authenticatedPrefix(path.stream(2), every - 1);
    assert.equal(res.resumedFrom, kept);
    assert.equal(res.bytesTransferred, SIZE - kept);
    assert.ok((await readFile(res.path)).equals(file), 'byte-exact');
  } finally {
    await path.close();
  }
});

test('every connection tampered with: after 3 resumes the get fails with one clear line, its .part a true prefix; the next get completes it', async () => {
  const path = await tamperedPath({ everyBytes: MiB });
  const downloads = join(dir, 'dl-persistent');
  try {
    const res = await runCli(['get', 'keeper', 'big.bin', '--via', 'tcp', '--registry', s.reg.url, '--downloads', downloads], { timeoutMs: 60_000 });
    assert.equal(res.code, 1, res.stderr);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(res.stderr, /failed authentication \(tampered with or corrupted\).*partial file kept/);
    assert.equal(path.proxy.counters.connections, 4, 'the first try and 3 resumes');
    const names = await readdir(downloads);
    assert.equal(names.length, 1, names.join(', '));
    const part = await readFile(join(downloads, names[0]!));
    let expected = 0;
    for (let n = 1; n <= 4; n++) expected += authenticatedPrefix(path.stream(n), MiB - 1);
    assert.equal(part.length, expected, 'the .part holds exactly the authenticated records');
    assert.ok(part.equals(file.subarray(0, part.length)), 'and they are the start of the file');
  } finally {
    await path.close();
  }
  await s.pointAt(s.owner.port);
  const res = await runCli(['get', 'keeper', 'big.bin', '--via', 'tcp', '--registry', s.reg.url, '--downloads', downloads, '--json'], { timeoutMs: 60_000 });
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout) as { path: string; resumedFrom: number };
  assert.ok(out.resumedFrom > 3 * MiB, `resumed from ${out.resumedFrom}`);
  assert.ok((await readFile(out.path)).equals(file));
});

const lengthFlips = [
  // A full record's length 0xffff: one flip makes it shorter; the record read is not the one sealed.
  { name: 'the high byte of a full record', at: REPLY + 5 * FULL, bit: 0 },
  { name: 'the low byte of a full record', at: REPLY + 30 * FULL + 1, bit: 0 },
  // The reply's length 25 becomes 9: below the 17 bytes of a tag and one byte.
  { name: 'the reply record, to below the minimum', at: 1, bit: 4 },
  // The reply's length grows past what the reply is: the requester reads file records as part of it.
  { name: 'the reply record, longer', at: 1, bit: 6 },
  // The last record (1,093 bytes of the file) claims 33,877: more than the stream will ever bring.
  { name: 'the last record, longer than what remains', at: REPLY + 64 * FULL, bit: 7 },
];

for (const c of lengthFlips) {
  test(`a flipped bit in the length field of ${c.name}: refused, resumed from the authenticated prefix, byte-exact`, async () => {
    const path = await tamperedPath({ at: [c.at], bit: c.bit, connections: 1 });
    const before = { ...tcpRecordFailures };
    try {
      const res = await fetchBig(join(dir, `dl-length-${c.at}-${c.bit}`));
      assert.equal(path.proxy.counters.corrupted, 1);
      const records = recordsOf(path.stream(1));
      assert.ok(records.some((r) => c.at === r.start || c.at === r.start + 1), `byte ${c.at} is in a length field of ${records.length} records`);
      const failures = Object.entries(tcpRecordFailures).reduce((n, [k, v]) => n + v - before[k as keyof typeof before], 0);
      assert.equal(failures, 1, 'the damaged record was counted');
      assert.equal(path.proxy.counters.connections, 2, 'one resume');
      assert.equal(res.resumedFrom, authenticatedPrefix(path.stream(1), c.at));
      assert.ok((await readFile(res.path)).equals(file), 'byte-exact');
    } finally {
      await path.close();
    }
  });
}
