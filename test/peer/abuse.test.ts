// A real owner (a `p2pshare peer` process) attacked for real while a real `get` runs: GET floods
// that are answered ok and never redeemed, from one key and from many; hundreds of TCP
// connections that never say hello, from one source address and from forty; requesters that
// stop reading and must lose their slots after 30 s (real timers here).
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { ControlClient } from '../../src/control/client';
import type { SecureConnection } from '../../src/net/connection';
import type { Endpoint } from '../../src/net/endpoint';
import { GetStatus, type TransportName } from '../../src/wire/control';
import { FrameType } from '../../src/wire/frame';
import { decodeData, encodeAck } from '../../src/wire/transfer';
import { runCli, tempDir, type RunningCli } from '../support/cli';
import { tcpHello } from '../support/secure';
import { connectToPeer, randomFile, registry, sha256, startPeer } from './support';

/** The legitimate action: `get NAME a.txt`, timed, checked byte for byte. */
async function timedGet(regUrl: string, dir: string, digest: string): Promise<number> {
  const t0 = Date.now();
  const res = await runCli(['get', 'victim', 'a.txt', '--registry', regUrl, '--downloads', join(dir, 'dl'), '--json'], { timeoutMs: 30_000 });
  const ms = Date.now() - t0;
  assert.equal(res.code, 0, res.stderr);
  assert.equal(await sha256(JSON.parse(res.stdout).path), digest);
  return ms;
}

async function victim(dir: string) {
  const reg = await registry();
  const digest = await randomFile(join(dir, 'share', 'a.txt'), 256 * 1024);
  await randomFile(join(dir, 'share', 'big.bin'), 64 * 1024 * 1024);
  const { cli, port } = await startPeer('victim', reg.url, join(dir, 'share'));
  return { reg, digest, cli, port };
}

/** Requester keys asking for `file` over and over, never redeeming a ticket; counts the answers. */
async function getFlood(regUrl: string, keys: number) {
  const counts = { ok: 0, busy: 0, other: 0 };
  const sessions: Array<{ endpoint: Endpoint; conn: SecureConnection }> = [];
  for (let k = 0; k < keys; k++) sessions.push(await connectToPeer(regUrl, 'victim'));
  let stopped = false;
  const loops = sessions.map(async ({ endpoint, conn }) => {
    const client = new ControlClient(endpoint);
    for (let sessionId = 1; !stopped; sessionId++) {
      const a = await client.get(conn, 'victim', { transport: 'tcp', sessionId, offset: 0, expectedSha256: null, maxPayload: 0, name: 'a.txt' }).catch(() => undefined);
      if (a?.status === GetStatus.ok) counts.ok++;
      else if (a?.status === GetStatus.busy) counts.busy++;
      else counts.other++;
    }
  });
  return {
    counts,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      for (const s of sessions) await s.endpoint.close();
    },
  };
}

/** Holds `perSource` connections from each source address open, never sending; reopens any the owner closes. */
function idleFlood(port: number, sources: string[], perSource: number) {
  const stats = { opened: 0, open: 0, closedByOwner: 0 };
  const sockets = new Set<net.Socket>();
  let stopped = false;
  const open = (localAddress: string) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    sockets.add(s);
    s.on('error', () => {});
    s.on('data', () => {});
    let connected = false;
    s.on('connect', () => {
      connected = true;
      stats.opened++;
      stats.open++;
    });
    s.on('close', () => {
      sockets.delete(s);
      if (connected) stats.open--;
      if (stopped) return;
      stats.closedByOwner++;
      setImmediate(() => open(localAddress));
    });
  };
  for (const source of sources) for (let i = 0; i < perSource; i++) open(source);
  return {
    stats,
    stop() {
      stopped = true;
      for (const s of sockets) s.destroy();
    },
  };
}

interface Attack {
  /** What it did so far, for the log line. */
  report(): string;
  /** Fails unless the attack really ran at full strength. */
  assertRan(): void;
  stop(): Promise<void> | void;
}

const idleSources = (n: number) => Array.from({ length: n }, (_, i) => `127.0.1.${i + 1}`);

const attacks: Array<[string, (v: Awaited<ReturnType<typeof victim>>) => Promise<Attack> | Attack]> = [
  ['another key floods GETs that are answered ok and never redeemed', async (v) => {
    const flood = await getFlood(v.reg.url, 1);
    return { report: () => JSON.stringify(flood.counts), assertRan: () => assert.ok(flood.counts.ok >= 4 && flood.counts.busy > 100), stop: flood.stop };
  }],
  ['twelve keys flood GETs, together asking for more than every slot', async (v) => {
    const flood = await getFlood(v.reg.url, 12);
    return { report: () => JSON.stringify(flood.counts), assertRan: () => assert.ok(flood.counts.ok >= 32 && flood.counts.busy > 100), stop: flood.stop };
  }],
  ['an attacker keeps 300 idle TCP connections from one source address', (v) => idleAttack(v.port, ['127.0.0.2'], 300)],
  ['an attacker keeps 320 idle TCP connections from 40 source addresses (more than the 256 the owner holds)', (v) => idleAttack(v.port, idleSources(40), 8)],
];

function idleAttack(port: number, sources: string[], perSource: number): Attack {
  const flood = idleFlood(port, sources, perSource);
  return {
    report: () => `${flood.stats.open} held now, ${flood.stats.opened} opened in all`,
    assertRan: () => assert.ok(flood.stats.opened >= sources.length * perSource, JSON.stringify(flood.stats)),
    stop: () => flood.stop(),
  };
}

for (const [what, start] of attacks) {
  test(`a get completes within 5 s while ${what}`, async () => {
    const { dir, cleanup } = await tempDir();
    const v = await victim(dir);
    try {
      const attack = await start(v);
      try {
        await sleep(1500); // in full swing before the get starts
        const before = attack.report();
        const ms = await timedGet(v.reg.url, dir, v.digest);
        console.log(`# get while ${what}: ${ms} ms (attack when it started: ${before}; when it ended: ${attack.report()})`);
        assert.ok(ms < 5000, `the get took ${ms} ms`);
        attack.assertRan();
      } finally {
        await attack.stop();
      }
    } finally {
      await v.cli.stop();
      await v.reg.close();
      await cleanup();
    }
  });
}

/** Lines the peer printed about failed sends, with the time each was first seen. */
function watchFailures(cli: RunningCli): { seen: Array<{ at: number; line: string }>; stop(): void } {
  const seen: Array<{ at: number; line: string }> = [];
  const timer = setInterval(() => {
    const lines = cli.stdout.split('\n').filter((l) => l.includes('failed to send'));
    for (const line of lines.slice(seen.length)) seen.push({ at: Date.now(), line });
  }, 100);
  return { seen, stop: () => clearInterval(timer) };
}

test('a requester that stops reading loses its slots after 30 s, over TCP and over UDP (real timers)', async () => {
  const { dir, cleanup } = await tempDir();
  const v = await victim(dir);
  const { endpoint, conn } = await connectToPeer(v.reg.url, 'victim');
  const client = new ControlClient(endpoint);
  const sockets: net.Socket[] = [];
  const failures = watchFailures(v.cli);
  let sessionId = 0;
  const get = (transport: TransportName) =>
    client.get(conn, 'victim', { transport, sessionId: ++sessionId, offset: 0, expectedSha256: null, maxPayload: transport === 'udp' ? 1200 : 0, name: 'big.bin' });
  // A UDP receiver that acknowledges its first packet again and again with a zero window:
  // the owner hears from it all the time, but it never takes anything new.
  const first = new Map<number, { pn: number; sendTimeUs: number }>();
  endpoint.on(FrameType.data, (f) => {
    const d = decodeData(f.body);
    if (d && !first.has(f.id)) first.set(f.id, { pn: d.packetNumber, sendTimeUs: d.sendTimeUs });
  });
  endpoint.on(FrameType.abort, () => {});
  const acking = setInterval(() => {
    for (const [id, p] of first) conn.send(FrameType.ack, id, encodeAck({ echoTimeUs: p.sendTimeUs, ackDelayUs: 0, window: 0, cumulativeChunk: 0, ranges: [{ first: p.pn, last: p.pn }] }));
  }, 200);
  try {
    for (let i = 0; i < 2; i++) {
      const a = await get('tcp');
      assert.equal(a.status, GetStatus.ok);
      const s = net.connect(v.port, '127.0.0.1');
      sockets.push(s);
      s.on('error', () => {});
      await new Promise<void>((resolve) => {
        s.on('connect', () => s.write(tcpHello(conn, sessionId)));
        s.once('data', () => (s.pause(), resolve()));
      });
    }
    for (let i = 0; i < 2; i++) assert.equal((await get('udp')).status, GetStatus.ok);
    const stalled = Date.now();
    assert.equal((await get('tcp')).status, GetStatus.busy, 'its four slots are held');
    while (failures.seen.length < 4 && Date.now() - stalled < 45_000) await sleep(200);
    const after = failures.seen.map((f) => ({ s: (f.at - stalled) / 1000, line: f.line }));
    console.log(`# slots lost after: ${after.map((a) => `${a.s.toFixed(1)} s (${a.line.replace(/.*failed to send big.bin: /, '')})`).join('; ')}`);
    assert.equal(after.length, 4, `the owner still serves readers that stopped 45 s ago: ${v.cli.stdout}`);
    for (const a of after) assert.ok(a.s >= 29 && a.s < 40, `a slot was lost after ${a.s} s: ${a.line}`);
    assert.equal(after.filter((a) => /idle timeout/.test(a.line)).length, 2, 'the TCP streams end on the idle timeout');
    assert.equal(after.filter((a) => /no progress/.test(a.line)).length, 2, 'the UDP sends end for lack of progress');
    assert.equal((await get('tcp')).status, GetStatus.ok, 'admitted again');
  } finally {
    clearInterval(acking);
    failures.stop();
    for (const s of sockets) s.destroy();
    await endpoint.close();
    await v.cli.stop();
    await v.reg.close();
    await cleanup();
  }
});
