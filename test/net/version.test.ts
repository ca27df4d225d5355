// Versioning (PROTOCOL.md 3.2) over real sockets: a peer answers a clear frame of another
// version with VERSION_NOT_SUPPORTED in that version's framing, and a requester whose handshake
// reaches a peer of another version gets one clear error at once instead of a timeout.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { test } from 'node:test';
import { P2pError } from '../../src/core/errors';
import { encodeListRequest } from '../../src/wire/control';
import { decodeClearFrame, encodeClearFrame, Envelope, FrameType } from '../../src/wire/frame';
import { ownerEndpoint, requesterEndpoint } from '../support/secure';
import { PrivateKey } from '../../src/core/x25519';

test('a version-1 request is answered with VERSION_NOT_SUPPORTED (version 1 framing) listing version 2, at most 10 a second', async () => {
  const peer = await ownerEndpoint('v2');
  const client = dgram.createSocket('udp4');
  client.bind(0, '127.0.0.1');
  await once(client, 'listening');
  const answers: Buffer[] = [];
  client.on('message', (m) => answers.push(m));
  try {
    // A version-1 LIST_REQUEST, byte for byte as a version-1 peer sends it.
    for (let i = 0; i < 50; i++) client.send(encodeClearFrame(FrameType.listRequest, 77, encodeListRequest(0), 1), peer.endpoint.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(peer.endpoint.drops.bad_version, 50);
    assert.ok(answers.length >= 1 && answers.length <= 4, `answers: ${answers.length}`);
    const f = decodeClearFrame(answers[0]!);
    assert.ok(typeof f !== 'string');
    assert.equal(f.version, 1, 'in the asker own framing');
    assert.equal(f.type, Envelope.versionNotSupported);
    assert.equal(f.id, 77);
    assert.deepEqual([...f.body], [2, 2]);
    assert.ok(answers[0]!.length <= 3 * 16, 'the answer is no amplifier');
  } finally {
    client.close();
    await peer.endpoint.close();
  }
});

test('a requester whose handshake reaches a peer of another version fails at once with one clear line', async () => {
  // A real peer of version 1: answers every frame that passes its checks with its own VERSION_NOT_SUPPORTED.
  const old = dgram.createSocket('udp4');
  old.bind(0, '127.0.0.1');
  await once(old, 'listening');
  let inits = 0;
  old.on('message', (m, rinfo) => {
    const f = decodeClearFrame(m);
    if (typeof f === 'string') return; // version 1 checks the CRC too: the INIT must pass it
    inits++;
    old.send(encodeClearFrame(Envelope.versionNotSupported, f.id, Buffer.from([1, 1]), 1), rinfo.port, rinfo.address);
  });
  const ep = await requesterEndpoint();
  try {
    const started = Date.now();
    const err = await ep.handshake({ address: '127.0.0.1', port: old.address().port }, { peerKey: PrivateKey.generate().publicKey, ownerName: 'old' }).then(
      () => assert.fail('a handshake with a version-1 peer must fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof P2pError);
    assert.equal(err.code, 'INCOMPATIBLE_VERSION'); // exit 1
    assert.match(err.message, /peer 'old' speaks protocol versions 1-1; this p2pshare speaks 2/);
    assert.equal(inits, 1, 'the INIT passed the version-1 checks (magic, CRC)');
    assert.ok(Date.now() - started < 400, 'answered on the first try, not after a retry');
  } finally {
    old.close();
    await ep.close();
  }
});
