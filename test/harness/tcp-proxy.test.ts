// The delaying TCP proxy passes bytes intact in both directions, delays them, and paces them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { TcpProxy } from '../support/tcp-proxy';

/** A server that answers every connection by echoing what it reads, then ending. */
async function echoServer(): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return server;
}

function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

/** Sends `data` to port, half-closes, and collects the echo. */
function roundTrip(port: number, data: Buffer, timeoutMs = 20_000): Promise<{ echo: Buffer; firstByteMs: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const t0 = performance.now();
    let firstByteMs = -1;
    const s = net.connect(port, '127.0.0.1', () => s.end(data));
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('echo timed out'));
    }, timeoutMs);
    s.on('data', (c: Buffer) => {
      if (firstByteMs < 0) firstByteMs = performance.now() - t0;
      chunks.push(c);
    });
    s.on('end', () => {
      clearTimeout(timer);
      resolve({ echo: Buffer.concat(chunks), firstByteMs });
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('bytes pass intact both ways, and a round trip takes at least both one-way delays', async () => {
  const server = await echoServer();
  const proxy = await TcpProxy.start({ target: { address: '127.0.0.1', port: portOf(server) }, delayMs: 25 });
  try {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const { echo, firstByteMs } = await roundTrip(proxy.port, data);
    assert.equal(echo.length, data.length);
    assert.equal(digest(echo), digest(data));
    assert.ok(firstByteMs >= 50, `first echoed byte after ${firstByteMs.toFixed(1)} ms`);
    assert.equal(proxy.counters.bytesToTarget, data.length);
    assert.equal(proxy.counters.bytesToClient, data.length);
    assert.equal(proxy.counters.connections, 1);
  } finally {
    await proxy.close();
    server.close();
  }
});

test('rate limit: 2 MiB at 40 Mbit/s each way takes at least the serialisation time', async () => {
  const server = await echoServer();
  const proxy = await TcpProxy.start({ target: { address: '127.0.0.1', port: portOf(server) }, rateMbit: 40, maxBufferedBytes: 256 * 1024 });
  try {
    const data = randomBytes(2 * 1024 * 1024);
    const t0 = performance.now();
    const { echo } = await roundTrip(proxy.port, data);
    const ms = performance.now() - t0;
    assert.equal(digest(echo), digest(data));
    const minMs = ((data.length * 8) / 40e6) * 1000; // the two directions overlap; one must pass in full
    assert.ok(ms >= minMs, `${ms.toFixed(0)} ms for ${data.length} B, the rate allows no less than ${minMs.toFixed(0)} ms`);
  } finally {
    await proxy.close();
    server.close();
  }
});

test('several connections at once, each intact; a reset on one side ends the other', async () => {
  const server = await echoServer();
  const proxy = await TcpProxy.start({ target: { address: '127.0.0.1', port: portOf(server) }, delayMs: 5 });
  try {
    const datas = Array.from({ length: 5 }, (_, i) => randomBytes(100_000 + i));
    const echoes = await Promise.all(datas.map((d) => roundTrip(proxy.port, d)));
    echoes.forEach((e, i) => assert.equal(digest(e.echo), digest(datas[i]!)));
    // A client that resets: the proxied connection to the target goes away too.
    const closedAtServer = new Promise<void>((resolve) => server.once('connection', (s) => s.on('close', () => resolve())));
    const c = net.connect(proxy.port, '127.0.0.1');
    await new Promise<void>((resolve) => c.on('connect', () => resolve()));
    c.write('hello');
    await new Promise((r) => setTimeout(r, 50));
    c.resetAndDestroy();
    await Promise.race([closedAtServer, new Promise((_, reject) => setTimeout(() => reject(new Error('target side not closed')), 5000))]);
  } finally {
    await proxy.close();
    server.close();
  }
});

test('corruption flips exactly the bits asked for, per connection and direction, and counts them; capture keeps what arrived', async () => {
  const server = await echoServer();
  const proxy = await TcpProxy.start({
    target: { address: '127.0.0.1', port: portOf(server) },
    corruptToClient: { at: [0, 100_000], everyBytes: 300_000, connections: 1, bit: 7 },
    corruptToTarget: { at: [5], bit: 2 },
    capture: { maxBytes: 4 * 1024 * 1024 },
  });
  try {
    const data = randomBytes(700_000);
    const first = (await roundTrip(proxy.port, data)).echo;
    const second = (await roundTrip(proxy.port, data)).echo;
    // Connection 1: byte 5 flipped (bit 2) on the way in, echoed; then bytes 0, 100,000, 299,999
    // and 599,999 flipped (bit 7) on the way back.
    const expected = Buffer.from(data);
    expected[5]! ^= 1 << 2;
    for (const o of [0, 100_000, 299_999, 599_999]) expected[o]! ^= 1 << 7;
    assert.ok(first.equals(expected), 'connection 1 carries exactly the flips asked for');
    const expected2 = Buffer.from(data);
    expected2[5]! ^= 1 << 2;
    assert.ok(second.equals(expected2), 'connection 2: only the toTarget flip (toClient limited to connection 1)');
    assert.equal(proxy.counters.corrupted, 6);
    assert.deepEqual(proxy.flips.filter((f) => f.direction === 'toClient').map((f) => [f.connection, f.offset]), [[1, 0], [1, 100_000], [1, 299_999], [1, 599_999]]);
    const cap = proxy.capture!;
    assert.deepEqual(cap.streams(), [1, 2]);
    assert.ok(Buffer.concat(cap.pieces('toTarget', 1)).equals(data), 'the capture holds what the client sent');
    assert.ok(Buffer.concat(cap.pieces('toClient', 2)).equals(expected2), 'and what the target sent back');
    assert.equal(cap.missedBytes, 0);
  } finally {
    await proxy.close();
    server.close();
  }
});
