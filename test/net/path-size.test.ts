// Datagram size by path (PROTOCOL.md 6.1): between two endpoints of one host a padded path
// challenge proves 16 KiB datagrams cross both ways and the connection uses them; through a relay
// emulating a 1500-byte network path the probe is dropped and the connection keeps 1472.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOCAL_MAX_DATAGRAM_BYTES, MAX_DATAGRAM_BYTES, SEALED_OVERHEAD } from '../../src/wire/frame';
import { UdpRelay } from '../support/relay';
import { connectBoth, ownerEndpoint, requesterEndpoint } from '../support/secure';

test('on one host a padded probe proves 16 KiB datagrams both ways: both ends of the connection use them', async () => {
  const owner = await ownerEndpoint('big');
  const requester = await requesterEndpoint();
  try {
    const { toOwner, toRequester } = await connectBoth(requester, owner);
    assert.equal(toOwner.maxBody, MAX_DATAGRAM_BYTES - SEALED_OVERHEAD, 'a network size until proven');
    assert.equal(toRequester.maxBody, MAX_DATAGRAM_BYTES - SEALED_OVERHEAD);
    const sentBefore = requester.sent;
    assert.equal(await toOwner.probeSize(LOCAL_MAX_DATAGRAM_BYTES, 1000), true);
    assert.equal(requester.sent - sentBefore, 1, 'one probe');
    assert.equal(toOwner.maxBody, LOCAL_MAX_DATAGRAM_BYTES - SEALED_OVERHEAD);
    assert.equal(toRequester.maxBody, LOCAL_MAX_DATAGRAM_BYTES - SEALED_OVERHEAD, 'the owner saw the padded probe arrive whole');
  } finally {
    await requester.close();
    await owner.endpoint.close();
  }
});

test('through a path of 1500-byte MTU the probe is lost: the connection keeps 1472-byte datagrams', async () => {
  const owner = await ownerEndpoint('small');
  const requester = await requesterEndpoint();
  const relay = await UdpRelay.start({ target: owner.address }); // emulates a 1500-byte MTU by default
  try {
    const { toOwner, toRequester } = await connectBoth(requester, owner, { address: '127.0.0.1', port: relay.port });
    assert.equal(await toOwner.probeSize(LOCAL_MAX_DATAGRAM_BYTES, 300), false);
    assert.ok(relay.counters.toTarget.tooBig >= 1, 'the relay really dropped the large probe');
    assert.equal(toOwner.maxBody, MAX_DATAGRAM_BYTES - SEALED_OVERHEAD);
    assert.equal(toRequester.maxBody, MAX_DATAGRAM_BYTES - SEALED_OVERHEAD);
  } finally {
    await relay.close();
    await requester.close();
    await owner.endpoint.close();
  }
});
