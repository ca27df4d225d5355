// Versioning (PROTOCOL.md 3.1) over real sockets: an endpoint answers a frame of an unknown
// version with VERSION_NOT_SUPPORTED, and a requester talking to a peer of another version gets
// one clear error instead of a timeout.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { test } from 'node:test';
import { P2pError } from '../../src/core/errors';
import { encodeListRequest } from '../../src/wire/control';
import { ControlClient } from '../../src/control/client';
import { Endpoint } from '../../src/net/endpoint';
import { decodeFrame, encodeFrame, FrameType } from '../../src/wire/frame';

test('a frame of version 2 is answered with VERSION_NOT_SUPPORTED listing version 1, at most 10 a second', async () => {
  const peer = await Endpoint.bind(0, '127.0.0.1');
  const client = dgram.createSocket('udp4');
  client.bind(0, '127.0.0.1');
  await once(client, 'listening');
  const answers: Buffer[] = [];
  client.on('message', (m) => answers.push(m));
  try {
    for (let i = 0; i < 50; i++) client.send(encodeFrame(FrameType.listRequest, 77, encodeListRequest(0), 2), peer.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(peer.drops.bad_version, 50);
    assert.ok(answers.length >= 1 && answers.length <= 4, `answers: ${answers.length}`);
    const f = decodeFrame(answers[0]!);
    assert.ok(typeof f !== 'string');
    assert.equal(f.type, FrameType.versionNotSupported);
    assert.equal(f.id, 77);
    assert.deepEqual([...f.body], [1, 1]);
  } finally {
    client.close();
    await peer.close();
  }
});

test('a requester asking a peer that speaks only version 2 fails at once with one clear line', async () => {
  // A real peer of a future version: answers everything with its own VERSION_NOT_SUPPORTED.
  const future = dgram.createSocket('udp4');
  future.bind(0, '127.0.0.1');
  await once(future, 'listening');
  future.on('message', (m, rinfo) => {
    const f = decodeFrame(m);
    if (typeof f === 'string') return;
    future.send(encodeFrame(FrameType.versionNotSupported, f.id, Buffer.from([2, 3]), 2), rinfo.port, rinfo.address);
  });
  const ep = await Endpoint.bind(0, '127.0.0.1');
  try {
    const started = Date.now();
    const err = await new ControlClient(ep).list(ep.connect({ address: '127.0.0.1', port: future.address().port }), 'future').then(
      () => assert.fail('listing a version-2 peer must fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof P2pError);
    assert.equal(err.code, 'INCOMPATIBLE_VERSION'); // exit 1
    assert.match(err.message, /speaks protocol versions 2-3; this p2pshare speaks 1/);
    assert.ok(Date.now() - started < 3000, 'answered on the first try, not after every retry');
  } finally {
    future.close();
    await ep.close();
  }
});
