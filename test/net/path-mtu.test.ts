// Path MTU discovery (PROTOCOL.md 6.10): the search over padded probes converges on loopback to the
// largest size, settles at the emulated path's limit behind a relay that drops larger datagrams
// (counted by the relay), a UDP transfer at that size is byte-exact, and lost probes never hold
// the GET back.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { SecureConnection } from '../../src/net/connection';
import { MAX_PROBES, NO_WAIT_BELOW_BYTES, PathMtuSearch, PROBE_MTUS, probeSizes } from '../../src/net/path-mtu';
import { routeInterface } from '../../src/net/route-mtu';
import { DEFAULT_MAX_PAYLOAD } from '../../src/transfer/udp/index';
import { LOCAL_MAX_DATAGRAM_BYTES, SEALED_OVERHEAD } from '../../src/wire/frame';
import { DATA_HEADER_BYTES } from '../../src/wire/transfer';
import { tempDir } from '../support/cli';
import { UdpRelay, type Impairment } from '../support/relay';
import { connectBoth, ownerEndpoint, requesterEndpoint } from '../support/secure';
import { pair, randomFile, sessionId, sha256 } from '../transfer/support';

const BASE = SEALED_OVERHEAD + DATA_HEADER_BYTES + DEFAULT_MAX_PAYLOAD; // 1249

/**
 * A requester's connection to an owner, directly or through a relay impaired as given, for `fn`;
 * everything closed after.
 */
async function withConnection(
  name: string,
  through: { toTarget?: Impairment; toClient?: Impairment } | undefined,
  fn: (c: { toOwner: SecureConnection; toRequester: SecureConnection; relay: UdpRelay | undefined }) => Promise<void>,
): Promise<void> {
  const owner = await ownerEndpoint(name);
  const requester = await requesterEndpoint();
  const relay = through ? await UdpRelay.start({ target: owner.address, ...through }) : undefined;
  try {
    const { toOwner, toRequester } = await connectBoth(requester, owner, relay ? { address: '127.0.0.1', port: relay.port } : undefined);
    await fn({ toOwner, toRequester, relay });
  } finally {
    await relay?.close();
    await requester.close();
    await owner.endpoint.close();
  }
}

test('on loopback the search confirms the largest size (16 KiB) and both ends may use it', async () => {
  await withConnection('mtu-lo', undefined, async ({ toOwner, toRequester }) => {
    assert.deepEqual(probeSizes(toOwner), [...PROBE_MTUS.map((m) => m - 28), LOCAL_MAX_DATAGRAM_BYTES]);
    const search = new PathMtuSearch(toOwner, BASE);
    await search.whenDone();
    const s = search.state();
    assert.equal(s.datagram, LOCAL_MAX_DATAGRAM_BYTES);
    assert.deepEqual(s.failed, []);
    assert.ok(s.probes <= 2 * (PROBE_MTUS.length + 2), `bounded: ${s.probes} probes`);
    assert.equal(toOwner.confirmedDatagram, LOCAL_MAX_DATAGRAM_BYTES);
    assert.equal(toRequester.maxDataBody, LOCAL_MAX_DATAGRAM_BYTES - SEALED_OVERHEAD, 'the owner answered the 16 KiB probe: DATA may be that large');
  });
});

test('behind a relay that drops datagrams over a 1400-byte MTU the search settles at 1372, and larger probes were really lost', async () => {
  await withConnection('mtu-1400', { toTarget: { mtu: 1400 }, toClient: { mtu: 1400 } }, async ({ toOwner, relay }) => {
    const search = new PathMtuSearch(toOwner, BASE);
    await search.whenDone();
    const s = search.state();
    assert.equal(s.datagram, 1400 - 28);
    const tooLarge = probeSizes(toOwner).filter((size) => size > 1372);
    assert.deepEqual(s.failed, tooLarge, 'every larger size failed');
    const dropped = relay!.counters.toTarget.tooBig;
    assert.ok(dropped >= tooLarge.length + MAX_PROBES - 1 && dropped <= tooLarge.length * MAX_PROBES, `the smallest larger size was tried ${MAX_PROBES} times, each dropped (${dropped})`);
    assert.equal(toOwner.confirmedDatagram, 1372);
  });
});

test('when only the answers are too large, each size is answered once: a retry after a lost answer gets none', async () => {
  await withConnection('mtu-back', { toTarget: { mtu: 1500 }, toClient: { mtu: 1400 } }, async ({ toOwner, relay }) => {
    const search = new PathMtuSearch(toOwner, BASE);
    await search.whenDone();
    assert.equal(search.state().datagram, 1372);
    // Answers of 1392, 1452, 1464 and 1472 bytes were each sent once and dropped; the larger probes never reached the owner.
    assert.equal(relay!.counters.toClient.tooBig, 4, 'no size was answered twice');
    assert.ok(relay!.counters.toTarget.forwarded > relay!.counters.toClient.forwarded, 'the retries reached the owner and went unanswered');
  });
});

test('a UDP transfer at the discovered size through the 1400-byte relay is byte-exact, no DATA too large', async () => {
  const { dir, cleanup } = await tempDir();
  const p = await pair({ toTarget: { mtu: 1400 }, toClient: { mtu: 1400 }, capture: { maxBytes: 16 * 1024 * 1024 } });
  try {
    const search = new PathMtuSearch(p.toOwner as SecureConnection, BASE);
    await search.whenDone();
    const maxPayload = search.datagram - p.toOwner.overhead - DATA_HEADER_BYTES;
    assert.equal(maxPayload, 1372 - 49);
    const tooBigBefore = p.relay!.counters.toClient.tooBig + p.relay!.counters.toTarget.tooBig;
    const size = 3 * 1024 * 1024 + 17;
    const src = join(dir, 'src.bin');
    await randomFile(src, size);
    const id = sessionId();
    const partPath = join(dir, 'got.part');
    await Promise.all([
      p.requesterUdp.receive({ conn: p.toOwner, sessionId: id, partPath, offset: 0, size, maxPayload }),
      p.ownerUdp.send({ conn: p.toRequester, sessionId: id, path: src, offset: 0, size, maxPayload }),
    ]);
    assert.equal(await sha256(partPath), await sha256(src));
    assert.equal(p.relay!.counters.toClient.tooBig + p.relay!.counters.toTarget.tooBig, tooBigBefore, 'no datagram of the transfer was too large for the path');
    const full = p.relay!.capture!.pieces('toClient').filter((d) => d.length === 1372).length;
    assert.ok(full >= Math.floor(size / maxPayload), `DATA went in 1372-byte datagrams (${full})`);
  } finally {
    await p.close();
    await cleanup();
  }
});

test('lost probes do not hold the GET back: ready() comes while larger sizes are still being retried', async () => {
  await withConnection('mtu-lost', {}, async ({ toOwner, relay }) => {
    const search = new PathMtuSearch(toOwner, BASE);
    await search.ready();
    const atGet = search.state();
    assert.ok(atGet.pending.length > 0 && !atGet.done, 'the lost probes are still unresolved when the GET may go');
    assert.ok(atGet.datagram >= BASE);
    await search.whenDone();
    assert.equal(search.state().datagram, 1472);
    assert.deepEqual(search.state().failed, [8972, LOCAL_MAX_DATAGRAM_BYTES]);
    assert.ok(relay!.counters.toTarget.tooBig >= MAX_PROBES + 1, 'the relay really dropped them');
  });
});

test('a transfer under 1 MiB does not wait for answers still due; one of 1 MiB or more waits as ready() does', async () => {
  // 10 ms each way: no answer can be in before a GET made at once, and all are in well within
  // the 100 ms a GET waits at most.
  const slow: Impairment = { delayMs: 10, mtu: 1400 };
  await withConnection('mtu-small', { toTarget: slow, toClient: slow }, async ({ toOwner }) => {
    const search = new PathMtuSearch(toOwner, BASE);
    await search.readyFor(NO_WAIT_BELOW_BYTES - 1);
    const atSmall = search.state();
    assert.deepEqual(atSmall.confirmed, [], 'the small GET went out before any answer');
    assert.equal(atSmall.datagram, BASE, 'with the base size, which needs no probe');
    await search.readyFor(NO_WAIT_BELOW_BYTES);
    const atLarge = search.state();
    assert.ok(atLarge.confirmed.includes(1372), `the large GET waited for the answers: confirmed ${atLarge.confirmed}`);
    assert.equal(atLarge.datagram, 1372);
    search.stop();
  });
});

test('a probe lost at random is sent again and its size still confirmed', async () => {
  await withConnection('mtu-retry', undefined, async ({ toOwner }) => {
    // Only 1472 bytes is probed above the base; its first try is never sent, as if lost on the way.
    const sent: number[] = [];
    const real = toOwner.sendSizeProbe.bind(toOwner);
    toOwner.sendSizeProbe = (size, answered) => {
      const lost = size === 1472 && !sent.includes(1472);
      sent.push(size);
      return lost ? () => {} : real(size, answered);
    };
    const search = new PathMtuSearch(toOwner, BASE, [1472]);
    await search.whenDone();
    assert.deepEqual(sent.filter((size) => size === 1472), [1472, 1472], 'the lost try was repeated once');
    assert.equal(search.state().datagram, 1472);
    assert.deepEqual(search.state().failed, []);
  });
});

test('the first hop is found in /proc/net/route by longest prefix (little-endian hex)', () => {
  const table = [
    'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT',
    'eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0',
    'wg0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0', // 10.0.0.0/8
    'tun1\t0009000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0', // 10.0.9.0/24
    'down0\t0209000A\t00000000\t0000\t0\t0\t0\tFFFFFFFF\t0\t0\t0', // not up
  ].join('\n');
  assert.equal(routeInterface(table, '10.0.9.2'), 'tun1');
  assert.equal(routeInterface(table, '10.1.2.3'), 'wg0');
  assert.equal(routeInterface(table, '203.0.113.5'), 'eth0');
  assert.equal(routeInterface(undefined, '10.0.9.2'), undefined);
});
