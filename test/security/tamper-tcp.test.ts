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
import { relayAndProxy } from '../support/relay-and-proxy';
import type { StreamCorruption } from '../support/tcp-proxy';
import { requesterIdentity } from '../peer/support';
import { authenticatedPrefix, ownerSharing, recordsOf } from './support';

const MiB = 1024 * 1024;
const SIZE = 4 * MiB + 5;

let s: Awaited<ReturnType<typeof ownerSharing>>;
let file: Buffer;
let me: Identity;
let dir: string;
/**
 * The owner's records for the whole file (reply first), as a clean fetch showed them: where
 * each starts in the stream and its length field. Offsets to flip are chosen from it, so the
 * tests follow however the owner cuts the file into records.
 */
let layout: Array<{ start: number; length: number }>;

before(async () => {
  s = await ownerSharing('keeper', 'big.bin', SIZE);
  ({ file, dir } = s);
  me = await requesterIdentity(dir);
  const clean = await tamperedPath({});
  try {
    await fetchBig(join(dir, 'dl-clean'));
    layout = recordsOf(clean.stream(1));
  } finally {
    await clean.close();
  }
});

after(async () => s?.close());

/**
 * The owner reached through a relay (UDP) and a corrupting proxy (TCP) on one port number: its
 * registration points there, as a NAT's mapping would (re-registered with the owner's own key).
 */
async function tamperedPath(corruptToClient: StreamCorruption) {
  const target = { address: '127.0.0.1', port: s.owner.port };
  const { relay, proxy } = await relayAndProxy({ target }, { target, corruptToClient, capture: { maxBytes: 8 * SIZE } });
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
  const flipAt = layout[11]!.start + 1000; // inside the ciphertext of the 11th record of the file
  assert.ok(layout[11]!.length > 1000);
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
    assert.ok(kept > 0);
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

type Layout = typeof layout;
const fulls = (l: Layout) => l.filter((r, i) => i > 0 && r.length === 0xffff);
const lengthFlips: Array<{ name: string; at: (l: Layout) => number; bit: number }> = [
  // A full record's length 0xffff: one flip makes it shorter; the record read is not the one sealed.
  { name: 'the high byte of a full record', at: (l) => fulls(l)[5]!.start, bit: 0 },
  { name: 'the low byte of a full record', at: (l) => fulls(l)[30]!.start + 1, bit: 0 },
  // The reply's length 25 becomes 9: below the 17 bytes of a tag and one byte.
  { name: 'the reply record, to below the minimum', at: () => 1, bit: 4 },
  // The reply's length grows past what the reply is: the requester reads file records as part of it.
  { name: 'the reply record, longer', at: () => 1, bit: 6 },
  // The last record (a few bytes of the file) claims 32 KiB more: more than the stream will ever bring.
  {
    name: 'the last record, longer than what remains',
    at: (l) => {
      const last = l[l.length - 1]!;
      assert.ok(last.length < 0x8000, 'the flip of the top bit makes it longer');
      return last.start;
    },
    bit: 7,
  },
];

for (const c of lengthFlips) {
  test(`a flipped bit in the length field of ${c.name}: refused, resumed from the authenticated prefix, byte-exact`, async () => {
    const at = c.at(layout);
    const path = await tamperedPath({ at: [at], bit: c.bit, connections: 1 });
    const before = { ...tcpRecordFailures };
    try {
      const res = await fetchBig(join(dir, `dl-length-${at}-${c.bit}`));
      assert.equal(path.proxy.counters.corrupted, 1);
      const records = recordsOf(path.stream(1));
      assert.deepEqual(records, layout.slice(0, records.length), 'the owner cut the file as in the clean fetch');
      assert.ok(records.some((r) => at === r.start || at === r.start + 1), `byte ${at} is in a length field`);
      const failures = Object.entries(tcpRecordFailures).reduce((n, [k, v]) => n + v - before[k as keyof typeof before], 0);
      assert.equal(failures, 1, 'the damaged record was counted');
      assert.equal(path.proxy.counters.connections, 2, 'one resume');
      assert.equal(res.resumedFrom, authenticatedPrefix(path.stream(1), at));
      assert.ok((await readFile(res.path)).equals(file), 'byte-exact');
    } finally {
      await path.close();
    }
  });
}
