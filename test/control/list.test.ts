// LIST over real sockets against a share still being hashed: prefixes select one run of the
// sorted list, a file not hashed yet is listed without a digest and hashed when asked for by
// name or by GET, whose answer carries the real digest (PROTOCOL.md 4.2, 4.3).
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlClient } from '../../src/control/client';
import { prefixRange } from '../../src/control/server';
import { ShareIndex } from '../../src/peer/share';
import { GetStatus } from '../../src/wire/control';
import { tempDir } from '../support/cli';
import { connectBoth, requesterEndpoint } from '../support/secure';
import { randomFile } from '../peer/support';
import { UdpRelay } from '../support/relay';
import { inProcessOwner } from './support';

test('prefixRange selects exactly the names that start with the prefix, whatever the characters', () => {
  const alphabet = ['a', 'b', '/', '.', '0', 'ü', '\u{1F600}', '\uffff', ' '];
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const word = () => Array.from({ length: 1 + rand(6) }, () => alphabet[rand(alphabet.length)]).join('');
  const names = [...new Set(Array.from({ length: 3000 }, word))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((name) => ({ name }));
  for (let i = 0; i < 2000; i++) {
    const prefix = i % 3 === 0 ? names[rand(names.length)]!.name.slice(0, 1 + rand(4)) : word().slice(0, 1 + rand(3));
    const { from, to } = prefixRange(names, prefix);
    const expected = names.map((n, k) => (n.name.startsWith(prefix) ? k : -1)).filter((k) => k >= 0);
    assert.deepEqual(Array.from({ length: to - from }, (_, k) => from + k), expected, JSON.stringify(prefix));
  }
  assert.deepEqual(prefixRange(names, ''), { from: 0, to: names.length });
  assert.deepEqual(prefixRange([], 'x'), { from: 0, to: 0 });
});

test('a file not hashed yet: listed without a digest, hashed when asked for by name, and a GET answer carries its real digest', async () => {
  const { dir, cleanup } = await tempDir();
  const root = join(dir, 'share');
  await mkdir(join(root, 'pictures', '2024'), { recursive: true });
  await mkdir(join(root, 'pictures', '2025'), { recursive: true });
  for (let i = 0; i < 300; i++) await writeFile(join(root, 'pictures', i % 2 ? '2024' : '2025', `p${i}.jpg`), `not a jpeg ${i}`);
  const big = await randomFile(join(root, 'zz-big.bin'), 24 * 1024 * 1024);
  const small = await randomFile(join(root, 'zz-small.bin'), 1000);
  // No background hashing: every entry waits until someone asks for it.
  const share = await ShareIndex.scan([root], dir, { backgroundHashes: 0 });
  const o = await inProcessOwner(share);
  const ep = await requesterEndpoint();
  try {
    const client = new ControlClient(ep);
    const { toOwner: conn } = await connectBoth(ep, o.side);
    const all = await client.list(conn, 'o');
    assert.equal(all.length, 302);
    assert.ok(all.every((e) => e.sha256 === ''), 'nothing hashed yet, nothing listed with a digest');
    assert.equal(share.pending, 302);

    const under2024 = await client.list(conn, 'o', { prefix: 'share/pictures/2024/' });
    assert.equal(under2024.length, 150);
    assert.ok(under2024.every((e) => e.name.startsWith('share/pictures/2024/')));
    assert.deepEqual(await client.list(conn, 'o', { prefix: 'share/pictures/2026/' }), []);

    // By name: the owner hashes it first (waiting up to 300 ms a request, so perhaps a few).
    const requestsBefore = client.listRequests;
    const entry = await client.entry(conn, 'o', 'share/zz-big.bin');
    assert.equal(entry?.sha256, big);
    assert.equal(entry?.size, 24 * 1024 * 1024);
    console.log(`# digest of a 24 MiB file not hashed yet after ${client.listRequests - requestsBefore} LIST request(s)`);
    assert.equal(await client.entry(conn, 'o', 'share/zz'), undefined, 'only that exact name');
    assert.equal(await client.entry(conn, 'o', 'share/nothing.txt'), undefined);
    assert.equal(share.pending, 301, 'only the file asked for was hashed');

    // A GET for any version of a file not hashed yet: hashed first, answered with its real digest.
    const answer = await client.get(conn, 'o', { transport: 'tcp', sessionId: 1, offset: 0, expectedSha256: null, maxPayload: 0, name: 'share/zz-small.bin' });
    assert.equal(answer.status, GetStatus.ok);
    assert.equal(answer.sha256, small);
    assert.equal((await client.list(conn, 'o', { prefix: 'share/zz-small.bin' }))[0]?.sha256, small, 'and listed with it from then on');
  } finally {
    share.close();
    await ep.close();
    await o.close();
    await cleanup();
  }
});

test('a LIST request with a prefix is answered only with that run of the list, however long the list', async () => {
  const { dir, cleanup } = await tempDir();
  const root = join(dir, 's');
  for (const sub of ['a', 'a.b', 'a0', 'ab']) await mkdir(join(root, sub), { recursive: true });
  await writeFile(join(root, 'a', 'x.txt'), 'x');
  await writeFile(join(root, 'a', 'y.txt'), 'y');
  await writeFile(join(root, 'a.b', 'z.txt'), 'z');
  await writeFile(join(root, 'a0', 'z.txt'), 'z');
  await writeFile(join(root, 'ab', 'z.txt'), 'z');
  const share = await ShareIndex.build([root], dir);
  const o = await inProcessOwner(share);
  const ep = await requesterEndpoint();
  try {
    const client = new ControlClient(ep);
    const { toOwner: conn } = await connectBoth(ep, o.side);
    assert.deepEqual((await client.list(conn, 'o', { prefix: 's/a/' })).map((e) => e.name), ['s/a/x.txt', 's/a/y.txt']);
    assert.deepEqual((await client.list(conn, 'o', { prefix: 's/a' })).map((e) => e.name), ['s/a.b/z.txt', 's/a/x.txt', 's/a/y.txt', 's/a0/z.txt', 's/ab/z.txt']);
    const page = await client.listPage(conn, 'o', { prefix: 's/a/', start: 1 });
    assert.equal(page.total, 2, 'total counts the entries under the prefix');
    assert.deepEqual(page.entries.map((e) => e.name), ['s/a/y.txt']);
  } finally {
    share.close();
    await ep.close();
    await o.close();
    await cleanup();
  }
});

test('a listing of many pages asks for several at once: every entry exactly once and in order, pages of uneven sizes included', async () => {
  const { dir, cleanup } = await tempDir();
  const root = join(dir, 'share');
  await mkdir(root, { recursive: true });
  // Names from 1 to 200 characters: how many fit a page varies from page to page, so the pages
  // asked for ahead overlap or leave gaps, which are asked for next.
  const names: string[] = [];
  for (let i = 0; i < 700; i++) {
    const name = `${String(i).padStart(4, '0')}-${'n'.repeat((i * 37) % 200)}`;
    await writeFile(join(root, name), String(i));
    names.push(`share/${name}`);
  }
  names.sort();
  const share = await ShareIndex.scan([root], dir, { backgroundHashes: 0 });
  /** When the owner answered each LIST (ms). */
  const asked: number[] = [];
  const offer = {
    list: () => (asked.push(performance.now()), share.list()),
    lookup: (n: string) => share.lookup(n),
    isCurrent: (f: Parameters<typeof share.isCurrent>[0]) => share.isCurrent(f),
  };
  // Every answer is held 200 ms on its way back: one page at a time, no two LIST requests could
  // reach the owner less than 200 ms apart.
  const path = await throughRelay(offer, { toClient: { delayMs: 200 } });
  try {
    const { client, conn } = path;
    const pages: string[][] = [];
    const all = await client.list(conn, 'o', { onPage: (entries) => pages.push(entries.map((e) => e.name)) });
    assert.deepEqual(all.map((e) => e.name), names, 'every name once, in the owner order');
    assert.deepEqual(pages.flat(), names, 'onPage hears them in order too');
    const before = asked.length;
    assert.ok(before > 10, `${before} LIST requests`);
    // Requests that reached the owner within 100 ms of another: they were in flight together.
    const together = asked.filter((t, k) => k > 0 && t - asked[k - 1]! < 100).length;
    assert.ok(together >= before / 2, `${together} of ${before} LIST requests came within 100 ms of the one before`);
  } finally {
    await path.close();
    await cleanup();
  }
});

test('a listing crosses a path narrower than Ethernet that drops larger datagrams silently (1400-byte MTU): pages fit the base datagram', async () => {
  const { dir, cleanup } = await tempDir();
  const root = join(dir, 'share');
  await mkdir(root, { recursive: true });
  for (let i = 0; i < 300; i++) await writeFile(join(root, `file-${String(i).padStart(3, '0')}-${'x'.repeat(i % 40)}.txt`), String(i));
  const share = await ShareIndex.scan([root], dir, { backgroundHashes: 0 });
  // No ICMP, no fragments: a datagram over 1372 bytes of UDP payload is dropped (and counted).
  const path = await throughRelay(share, { toClient: { mtu: 1400 }, toTarget: { mtu: 1400 } });
  try {
    const { client, conn, relay } = path;
    const all = await client.list(conn, 'o');
    assert.equal(all.length, 300);
    assert.equal(relay.counters.toClient.tooBig, 0, 'no page was too big for the path');
    assert.ok(relay.counters.toClient.forwarded > 10, `${relay.counters.toClient.forwarded} datagrams`);
  } finally {
    await path.close();
    await cleanup();
  }
});

/** An in-process owner of `offer` reached only through a UdpRelay impaired as `impairments` say; close() stops all three. */
async function throughRelay(offer: Parameters<typeof inProcessOwner>[0], impairments: Omit<Parameters<typeof UdpRelay.start>[0], 'target'>) {
  const o = await inProcessOwner(offer);
  const relay = await UdpRelay.start({ target: { address: '127.0.0.1', port: o.port }, ...impairments });
  const ep = await requesterEndpoint();
  const close = async () => {
    await ep.close();
    await relay.close();
    await o.close();
  };
  try {
    const { toOwner: conn } = await connectBoth(ep, o.side, { address: '127.0.0.1', port: relay.port });
    return { client: new ControlClient(ep), conn, relay, close };
  } catch (err) {
    await close();
    throw err;
  }
}
