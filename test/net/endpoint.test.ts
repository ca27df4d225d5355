// The endpoint's connections: one per handshake, found by index whatever else arrives, what
// handlers are given, a bounded table that never forgets a connection a session holds, and
// sends that never throw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SecureConnection } from '../../src/net/connection';
import { FrameType, MAX_DATAGRAM_BYTES, SEALED_OVERHEAD } from '../../src/wire/frame';
import { connect, connectBoth, ownerEndpoint, requesterEndpoint } from '../support/secure';

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 5));
}

test("messages of one session arrive on one connection; another requester's on another", async () => {
  const a = await ownerEndpoint('a');
  const b = await requesterEndpoint();
  const c = await requesterEndpoint();
  const seen: SecureConnection[] = [];
  a.endpoint.on(FrameType.listRequest, (_f, conn) => seen.push(conn));
  try {
    const fromB = await connect(b, a);
    const fromC = await connect(c, a);
    fromB.send(FrameType.listRequest, 1, Buffer.alloc(4));
    fromB.send(FrameType.listRequest, 2, Buffer.alloc(2), Buffer.alloc(2)); // a body in parts
    fromC.send(FrameType.listRequest, 3, Buffer.alloc(4));
    await until(() => seen.length === 3);
    assert.equal(seen.length, 3);
    assert.equal(seen[0], seen[1], 'the same session, the same connection');
    assert.notEqual(seen[0], seen[2], 'another session, another connection');
    assert.deepEqual(seen[0]!.remote, { address: '127.0.0.1', port: b.port });
    assert.ok(seen[0]!.peerKey.equals(b.identity.publicKey), "the owner knows the requester's key from the handshake");
    assert.equal(a.endpoint.connection(seen[2]!.localIndex), seen[2]);
    assert.equal(seen[0]!.overhead, SEALED_OVERHEAD);
    assert.equal(seen[0]!.maxBody, MAX_DATAGRAM_BYTES - SEALED_OVERHEAD);
    assert.equal(a.endpoint.connections, 2);
  } finally {
    await Promise.all([a.endpoint.close(), b.close(), c.close()]);
  }
});

test('the table is bounded: connections nobody holds are forgotten (closed, their sends counted), held ones stay', async () => {
  const owner = await ownerEndpoint('bounded', { maxConnections: 8 });
  const requesters = await Promise.all(Array.from({ length: 14 }, () => requesterEndpoint()));
  try {
    const { toRequester: held } = await connectBoth(requesters[0]!, owner);
    const release = held.hold();
    const { toRequester: first } = await connectBoth(requesters[1]!, owner);
    for (const r of requesters.slice(2)) await connectBoth(r, owner);
    assert.ok(owner.endpoint.connections <= 8, `${owner.endpoint.connections} connections kept`);
    assert.equal(owner.endpoint.connection(held.localIndex), held, 'a held connection is never forgotten');
    assert.equal(held.closed, false);
    assert.equal(first.closed, true, 'the oldest unheld connection was forgotten');
    const sent = owner.endpoint.sent;
    const unsendable = owner.endpoint.unsendable;
    first.send(FrameType.listResponse, 1, Buffer.alloc(4));
    assert.equal(owner.endpoint.sent, sent, 'a forgotten connection sends nothing');
    assert.equal(owner.endpoint.unsendable, unsendable + 1);
    release();
  } finally {
    await owner.endpoint.close();
    await Promise.all(requesters.map((r) => r.close()));
  }
});

test('a send after the socket closed is counted, never thrown', async () => {
  const owner = await ownerEndpoint('closing');
  const ep = await requesterEndpoint();
  const conn = await connect(ep, owner);
  await ep.close();
  await owner.endpoint.close();
  assert.equal(conn.closed, true);
  assert.doesNotThrow(() => conn.send(FrameType.abort, 1, Buffer.from([1])));
  assert.equal(ep.unsendable, 1);
  assert.equal(conn.queuedBytes(), 0);
});
