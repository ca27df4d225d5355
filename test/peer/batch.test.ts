// Many small files of a set on one TCP stream (PROTOCOL.md 5.1), end to end: the owner in this
// process behind a counting TCP proxy, the requester's getFiles. The small files come in one
// connection; an owner without batches, a damaged stream and a .part left by an earlier run each
// make some files travel alone, and every file still arrives byte-exact.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FetchEvent } from '../../src/control/server';
import { getFiles, type SetResult } from '../../src/peer/fetch-set';
import { RegistryClient } from '../../src/registry/client';
import { tcpRecordFailures } from '../../src/transfer/tcp-client';
import { partBase } from '../../src/transfer/local-names';
import { runCli, startCli, tempDir } from '../support/cli';
import { relayAndProxy } from '../support/relay-and-proxy';
import type { StreamCorruption } from '../support/tcp-proxy';
import { owner } from '../control/support';
import { registry, requesterIdentity, startPeer } from './support';

let dir: string;
let cleanup: () => Promise<void>;
let reg: Awaited<ReturnType<typeof registry>>;
const tree = new Map<string, Buffer>();
let owners = 0;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  ({ dir, cleanup } = await tempDir('p2pshare-batch-set-'));
  reg = await registry({ ttl: 300 });
  // 200 small files in 10 folders (0 B to 40 KiB, a few at record boundaries), and two past the
  // batch limit (1 MiB), which go alone.
  const sizes = [0, 1, 65_478, 65_479, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024];
  for (let i = 0; i < 207; i++) {
    const name = `set/d${i % 10}/f${i}${i % 7 === 0 ? '.jpg' : '.bin'}`;
    const data = randomBytes(i < sizes.length ? sizes[i]! : (i * 7919) % 40_000);
    await mkdir(join(dir, 'share', 'set', `d${i % 10}`), { recursive: true });
    await writeFile(join(dir, 'share', name), data);
    tree.set(name, data);
  }
});

after(async () => {
  await reg?.close();
  await cleanup?.();
});

/** An owner of the tree behind a relay and proxy that count and may damage its TCP streams; registered there. */
async function ownerBehindProxy(opts: { batch?: boolean; corrupt?: StreamCorruption } = {}) {
  const events: FetchEvent[] = [];
  const o = await owner([join(dir, 'share', 'set')], { name: `owner-${++owners}`, ...(opts.batch !== undefined ? { batch: opts.batch } : {}), onFetch: (e) => events.push(e) });
  const target = { address: '127.0.0.1', port: o.port };
  const { relay, proxy, port } = await relayAndProxy({ target }, { target, ...(opts.corrupt ? { corruptToClient: opts.corrupt } : {}) }).catch(async (err) => {
    await o.close();
    throw err;
  });
  await o.register(reg.url, port).catch(async (err) => {
    await Promise.all([proxy.close(), relay.close(), o.close()]);
    throw err;
  });
  return {
    name: o.side.name,
    events,
    proxy,
    async close() {
      await proxy.close();
      await relay.close();
      await o.close();
    },
  };
}

async function getSet(peer: string, downloads: string, names = ['set/']): Promise<SetResult> {
  const res = await getFiles({ registry: new RegistryClient(reg.url), peer, identity: await requesterIdentity(dir), names, via: 'auto', downloads });
  assert.ok('set' in res);
  return res.set;
}

/**
 * Every file of the tree in `downloads`, byte for byte, and nothing else (no .part, no lock); with
 * `folders`, those under them, saved from each named folder down (below 'set/').
 */
async function assertTree(downloads: string, folders?: string[]): Promise<void> {
  const want = [...tree].filter(([name]) => !folders || folders.some((f) => name.startsWith(f)));
  for (const [name, data] of want) {
    const saved = folders ? name.slice('set/'.length) : name;
    assert.ok((await readFile(join(downloads, saved))).equals(data), `${name} byte-exact`);
  }
  const found = (await readdir(downloads, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  assert.equal(found.length, want.length, `only the tree: ${found.filter((e) => !e.name.startsWith('f')).map((e) => e.name).join(', ')}`);
}

test('200 small files in one batch on one TCP connection, the two larger ones alone: byte-exact, one line at the owner', async () => {
  const o = await ownerBehindProxy();
  try {
    const downloads = join(dir, 'dl-batch');
    const set = await getSet(o.name, downloads);
    assert.equal(set.files.filter((f) => f.status === 'fetched').length, tree.size);
    assert.ok(set.files.every((f) => f.via === 'tcp'), 'small pictures too: in the batch');
    assert.equal(o.proxy.counters.connections, 3, 'one stream for the batch, one for each file over 1 MiB');
    await assertTree(downloads);
    const batch = o.events.filter((e) => e.files !== undefined);
    assert.equal(batch.length, 1);
    assert.equal(batch[0]!.files, tree.size - 2);
    assert.equal(batch[0]!.ok, true);
  } finally {
    await o.close();
  }
});

test('an owner without batches (an older version): every file fetched alone, byte-exact', async () => {
  const o = await ownerBehindProxy({ batch: false });
  try {
    const downloads = join(dir, 'dl-alone');
    const set = await getSet(o.name, downloads);
    assert.equal(set.files.filter((f) => f.status === 'fetched').length, tree.size);
    // Over TCP through the proxy, or UDP for the pictures (auto), one transfer each.
    const overTcp = set.files.filter((f) => f.via === 'tcp').length;
    assert.ok(overTcp > 0 && overTcp < tree.size);
    assert.equal(o.proxy.counters.connections, overTcp, 'no batch: one TCP connection per file over TCP');
    assert.equal(o.events.filter((e) => e.files !== undefined).length, 0);
    await assertTree(downloads);
  } finally {
    await o.close();
  }
});

test('a bit flipped in the batch stream: the batch stops at the damaged record, what it did not save travels alone, all byte-exact', async () => {
  // Folders of small files only: connection 1 is the batch.
  const folders = ['set/d1/', 'set/d2/', 'set/d3/', 'set/d7/', 'set/d8/'];
  const o = await ownerBehindProxy({ corrupt: { at: [300_000], connections: 1, bit: 2 } });
  const before = tcpRecordFailures.badAuth;
  try {
    const downloads = join(dir, 'dl-flip');
    const set = await getSet(o.name, downloads, folders);
    assert.equal(o.proxy.counters.corrupted, 1, 'the bit was flipped');
    assert.equal(tcpRecordFailures.badAuth, before + 1, 'and the damaged record refused');
    assert.deepEqual(set.files.filter((f) => f.status !== 'fetched').map((f) => `${f.name}: ${f.error?.message}`), []);
    const batch = o.events.find((e) => e.files !== undefined)!;
    assert.equal(batch.ok, false, 'the batch ended early');
    assert.ok(batch.files! > 0 && batch.files! < set.files.length, `${batch.files} files sent before the flip`);
    assert.ok(o.proxy.counters.connections > 1, `the rest fetched alone (${o.proxy.counters.connections} connections)`);
    await assertTree(downloads, folders);
  } finally {
    await o.close();
  }
});

test('a .part an earlier run left for one small file: that file resumes alone from it; the others come in the batch', async () => {
  const o = await ownerBehindProxy();
  try {
    const downloads = join(dir, 'dl-part');
    const name = 'set/d3/f13.bin';
    const data = tree.get(name)!;
    assert.ok(data.length > 1000);
    await mkdir(join(downloads, 'set', 'd3'), { recursive: true });
    await writeFile(join(downloads, 'set', 'd3', `${partBase(name)}.${sha(data).slice(0, 12)}.part`), data.subarray(0, 1000));
    const set = await getSet(o.name, downloads);
    const f = set.files.find((x) => x.name === name)!;
    assert.equal(f.status, 'fetched');
    assert.equal(f.resumedFrom, 1000, 'resumed from the .part');
    assert.equal(f.bytesTransferred, data.length - 1000);
    // The batch found the .part taken when it came to save that file, and left it to a GET of its own.
    assert.equal(o.proxy.counters.connections, 4, 'the batch, the two large files, and this one');
    await assertTree(downloads);
  } finally {
    await o.close();
  }
});

test('the owner killed in the middle of a batch: one line and exit 3 at once (no GET waits out another), and the same command then fetches the rest', async () => {
  const share = join(dir, 'share-kill');
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 4000; i++) {
    const name = `many/d${i % 40}/f${i}.bin`;
    if (i < 40) await mkdir(join(share, 'many', `d${i}`), { recursive: true });
    const data = randomBytes(2048);
    await writeFile(join(share, name), data);
    files.set(name, data);
  }
  const downloads = join(dir, 'dl-kill');
  const args = ['get', 'killed-owner', 'many/', '--registry', reg.url, '--downloads', downloads, '--json'];
  let peer = await startPeer('killed-owner', reg.url, share, ['--share', 'many']);
  try {
    // Every file hashed first: a file listed without a digest is asked for by name before its GET,
    // outside the four transfer slots, and this test counts the GETs.
    for (let i = 0; i < 1000 && !/hashed [\d,]+ files/.test(peer.cli.stderr); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(peer.cli.stderr, /hashed [\d,]+ files/);
    const get = startCli(args);
    const inPlace = async () => (await readdir(downloads, { recursive: true }).catch(() => [])).filter((n) => n.endsWith('.bin')).length;
    while ((await inPlace()) < 400 && get.proc.exitCode === null) await new Promise((r) => setTimeout(r, 10));
    peer.cli.proc.kill('SIGKILL');
    const { code } = await get.exited;
    assert.equal(code, 3, get.stderr);
    assert.match(get.stderr, /^error: peer 'killed-owner' is offline .*: \d+ of 4000 files in place; run the same command again to fetch the rest\n$/);
    const doc = JSON.parse(get.stdout) as SetResult & { stopped?: { code: string } };
    assert.equal(doc.stopped?.code, 'OFFLINE');
    // The batch broke; what it left went to GETs of their own, four at a time (the requester's
    // slots). Only those already asking saw the owner gone; the others were stopped, not asked.
    const offline = doc.files.filter((f) => /^peer '.*' is offline/.test(f.error?.message ?? '')).length;
    assert.ok(offline >= 1 && offline <= 4, `${offline} files waited for the vanished owner: ${JSON.stringify(doc.files.filter((f) => f.error && !/^not fetched/.test(f.error.message)).slice(0, 20).map((f) => f.error))}`);
    const done = await inPlace();
    assert.ok(done >= 400 && done < 4000, `${done} in place`);
    peer = await startPeer('killed-owner', reg.url, share, ['--share', 'many']);
    const rerun = await runCli(args, { timeoutMs: 120_000 });
    assert.equal(rerun.code, 0, rerun.stderr);
    const again = JSON.parse(rerun.stdout) as { present: number; fetched: number };
    assert.equal(again.present, done, 'what the first run saved is kept');
    assert.equal(again.fetched, 4000 - done);
    for (const [name, data] of files) assert.ok((await readFile(join(downloads, name))).equals(data), `${name} byte-exact`);
    const leftovers = (await readdir(downloads, { recursive: true })).filter((n) => /\.(part|lock)$/.test(n));
    assert.deepEqual(leftovers, []);
  } finally {
    await peer.cli.stop('SIGKILL');
  }
});
