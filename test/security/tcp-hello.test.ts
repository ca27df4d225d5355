// The TCP hello proves the session (PROTOCOL.md section 5): every one of its 224 bits flipped in
// turn, each on its own connection to a real owner, is refused and counted under the field it hit
// (magic, version, connection index, session ID and tag), and no refused connection gets a byte
// of the file; the ticket survives them all and the genuine hello then fetches the file
// byte-exact. A hello damaged on the path of a real fetch is refused (badAuth) and the requester
// fails at once with one clear error, never hangs.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ControlClient } from '../../src/control/client';
import { P2pError } from '../../src/core/errors';
import { fetchFile } from '../../src/peer/fetch';
import { RegistryClient } from '../../src/registry/client';
import { fetchOverTcp } from '../../src/transfer/tcp-client';
import { tcpRefusals } from '../../src/transfer/tcp-server';
import { GetStatus } from '../../src/wire/control';
import { TCP_HELLO_BYTES } from '../../src/wire/tcp';
import { relayAndProxy } from '../support/relay-and-proxy';
import { tcpHello } from '../support/secure';
import { connectToPeer, requesterIdentity } from '../peer/support';
import { ownerSharing } from './support';

const SIZE = 1024 * 1024 + 3;
let s: Awaited<ReturnType<typeof ownerSharing>>;
before(async () => (s = await ownerSharing('hello-owner', 'doc.bin', SIZE)));
after(async () => s?.close());

/** Sends `hello` on a new connection to the owner's TCP port; resolves with all it got back before the close. */
function offer(hello: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(s.owner.port, '127.0.0.1');
    const got: Buffer[] = [];
    sock.on('connect', () => sock.write(hello));
    sock.on('data', (c: Buffer) => got.push(c));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(got)));
  });
}

test('each of the 224 bits of a hello flipped: refused and counted by the field it hit, no file byte sent; the ticket survives for the genuine hello', async () => {
  const { endpoint, conn } = await connectToPeer(s.reg.url, 'hello-owner');
  try {
    const answer = await new ControlClient(endpoint).get(conn, 'hello-owner', { transport: 'tcp', sessionId: 7, offset: 0, expectedSha256: null, maxPayload: 0, name: 'doc.bin' });
    assert.equal(answer.status, GetStatus.ok);
    const genuine = tcpHello(conn, 7);
    assert.equal(genuine.length, TCP_HELLO_BYTES);
    const before = { ...tcpRefusals };
    const answeredBytes: number[] = [];
    for (let bit = 0; bit < TCP_HELLO_BYTES * 8; bit++) {
      const forged = Buffer.from(genuine);
      forged[bit >> 3]! ^= 1 << (bit & 7);
      answeredBytes.push((await offer(forged)).length);
    }
    const delta = Object.fromEntries(Object.entries(tcpRefusals).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
    assert.deepEqual(delta, {
      malformed: 3 * 8, // "PST"
      oldVersion: 8, // the version byte: answered in version 1's clear framing, status 2
      badTicket: 4 * 8, // the connection index: names no connection of the owner
      badAuth: (4 + 16) * 8, // the session ID (bound by the tag) and the tag itself
    });
    // Only the version flips got an answer: version 1's 9-byte refusal. No record, no file byte.
    assert.deepEqual(
      answeredBytes.flatMap((n, bit) => (n > 0 ? [[bit >> 3, n]] : [])),
      Array.from({ length: 8 }, () => [3, 9]),
    );
    const part = join(s.dir, 'sweep.part');
    await writeFile(part, '');
    const res = await fetchOverTcp({ conn, sessionId: 7, partPath: part, offset: 0, count: SIZE });
    assert.equal(res.bytes, SIZE);
    assert.ok((await readFile(part)).equals(s.file), 'the genuine hello fetched the file byte-exact');
  } finally {
    await endpoint.close();
  }
});

test('a hello damaged on the path of a real fetch: the owner refuses it (badAuth), the requester fails at once with one clear error; the next fetch succeeds', async () => {
  const target = { address: '127.0.0.1', port: s.owner.port };
  // Byte 20 of the first TCP connection's client->owner stream lies in the hello's tag.
  const { relay, proxy } = await relayAndProxy({ target }, { target, corruptToTarget: { at: [20], connections: 1, bit: 5 } });
  const registryClient = new RegistryClient(s.reg.url);
  const identity = await requesterIdentity(s.dir);
  const downloads = join(s.dir, 'dl');
  try {
    await s.pointAt(relay.port);
    const before = tcpRefusals.badAuth;
    const fetching = fetchFile({ registry: registryClient, peer: 'hello-owner', identity, file: 'doc.bin', via: 'tcp', downloads });
    await assert.rejects(fetching, (err: unknown) => err instanceof P2pError && err.code === 'FAILED' && /connection closed after 0 of/.test(err.message));
    assert.equal(proxy.counters.corrupted, 1);
    assert.equal(tcpRefusals.badAuth, before + 1, 'the owner refused the damaged hello as unauthenticated');
    assert.equal(proxy.counters.bytesToClient, 0, 'and sent nothing back');
    const res = await fetchFile({ registry: registryClient, peer: 'hello-owner', identity, file: 'doc.bin', via: 'tcp', downloads });
    assert.equal(proxy.counters.connections, 2);
    assert.ok((await readFile(res.path)).equals(s.file));
  } finally {
    await proxy.close();
    await relay.close();
  }
});
