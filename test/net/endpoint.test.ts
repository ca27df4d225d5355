// The endpoint's connections: one per remote address, what handlers are given, a bounded table
// that never forgets a connection a session holds, and sends that never throw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Connection } from '../../src/net/connection';
import { Endpoint } from '../../src/net/endpoint';
import { FRAME_OVERHEAD, FrameType, MAX_DATAGRAM_BYTES } from '../../src/wire/frame';

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 5));
}

test('frames from one remote arrive on one connection, the one connect() gives for that address', async () => {
  const a = await Endpoint.bind(0, '127.0.0.1');
  const b = await Endpoint.bind(0, '127.0.0.1');
  const c = await Endpoint.bind(0, '127.0.0.1');
  const seen: Connection[] = [];
  a.on(FrameType.listRequest, (_f, conn) => seen.push(conn));
  try {
    const toA = { address: '127.0.0.1', port: a.port };
    b.connect(toA).send(FrameType.listRequest, 1, Buffer.alloc(4));
    b.connect(toA).send(FrameType.listRequest, 2, Buffer.alloc(2), Buffer.alloc(2)); // a body in parts
    c.connect(toA).send(FrameType.listRequest, 3, Buffer.alloc(4));
    await until(() => seen.length === 3);
    assert.equal(seen.length, 3);
    assert.equal(seen[0], seen[1], 'the same remote, the same connection');
    assert.notEqual(seen[0], seen[2], 'another port, another connection');
    assert.deepEqual(seen[0]!.remote, { address: '127.0.0.1', port: b.port });
    assert.equal(a.connect({ address: '127.0.0.1', port: c.port }), seen[2]);
    assert.equal(seen[0]!.overhead, FRAME_OVERHEAD);
    assert.equal(seen[0]!.maxBody, MAX_DATAGRAM_BYTES - FRAME_OVERHEAD);
    assert.equal(a.connections, 2);
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

test('the table is bounded: connections nobody holds are forgotten (closed, their sends counted), held ones stay', async () => {
  const ep = await Endpoint.bind(0, '127.0.0.1');
  try {
    const held = ep.connect({ address: '127.0.0.1', port: 1 });
    const release = held.hold();
    const first = ep.connect({ address: '127.0.0.1', port: 2 });
    for (let port = 3; port < 6000; port++) ep.connect({ address: '127.0.0.1', port });
    assert.ok(ep.connections <= 4096, `${ep.connections} connections kept`);
    assert.equal(ep.connect({ address: '127.0.0.1', port: 1 }), held, 'a held connection is never forgotten');
    assert.equal(held.closed, false);
    assert.equal(first.closed, true, 'the oldest unheld connection was forgotten');
    assert.notEqual(ep.connect({ address: '127.0.0.1', port: 2 }), first, 'its address now gets a new connection');
    const sent = ep.sent;
    first.send(FrameType.listRequest, 1, Buffer.alloc(4));
    assert.equal(ep.sent, sent, 'a forgotten connection sends nothing');
    assert.equal(ep.unsendable, 1);
    release();
  } finally {
    await ep.close();
  }
});

test('a send after the socket closed is counted, never thrown', async () => {
  const ep = await Endpoint.bind(0, '127.0.0.1');
  const conn = ep.connect({ address: '127.0.0.1', port: 9 });
  await ep.close();
  assert.equal(conn.closed, true);
  assert.doesNotThrow(() => conn.send(FrameType.abort, 1, Buffer.from([1])));
  assert.equal(ep.unsendable, 1);
  assert.equal(conn.queuedBytes(), 0);
});
