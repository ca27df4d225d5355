// A flood of handshake initiations (PROTOCOL.md 3.4, "Cookies"): about 2,000 valid-mac1 INITs a
// second from 64 source ports, plus a smarter flooder on another IP that opens its cookie and
// sends INITs with a valid mac2 (flooder.ts, a process of its own: the owner's event loop and
// heap are its own). The owner keeps no state per initiation: its half-open count
// stays at the cap, it answers COOKIE_REPLYs, its heap does not grow with the number of INITs;
// and it keeps serving: a real fetch (and 5 listings) through a relay complete during the flood,
// the fetch byte-exact, their handshakes going through the cookie round trip the relay's capture
// shows.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { DEFAULT_HANDSHAKE_LIMITS } from '../../src/net/handshake';
import { fetchFile, listFiles } from '../../src/peer/fetch';
import { RegistryClient } from '../../src/registry/client';
import { decodeClearFrame, Envelope } from '../../src/wire/frame';
import { decodeInit, decodeResp } from '../../src/wire/handshake';
import { startTsChild, type RunningProcess } from '../support/cli';
import { UdpRelay } from '../support/relay';
import { requesterIdentity } from '../peer/support';
import { ownerSharing, until } from './support';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** INITs a second the flood aims at, on average. */
const RATE = 2000;
/** Requesters that list the owner's files after the fetch, also during the flood. */
const LISTS = 5;
const FLOODER = join(__dirname, 'flooder.ts');
let s: Awaited<ReturnType<typeof ownerSharing>>;
before(async () => (s = await ownerSharing('flooded', 'doc.bin', 2 * 1024 * 1024 + 1)));
after(async () => s?.close());

test('a flood of thousands of INITs a second from many ports: no state per INIT (half-open capped, heap flat), COOKIE_REPLYs, and real requesters served through the cookie round trip', async (t) => {
  const ep = s.owner.endpoint;
  const relay = await UdpRelay.start({ target: { address: '127.0.0.1', port: s.owner.port }, capture: { maxBytes: 16 * 1024 * 1024 } });
  const before = { ...ep.handshakes, received: ep.received };
  let halfOpenMax = 0;
  const sampler = setInterval(() => (halfOpenMax = Math.max(halfOpenMax, ep.halfOpenConnections)), 5);
  const started = performance.now();
  let flooder: RunningProcess | undefined;
  try {
    flooder = await startTsChild(FLOODER, [String(s.owner.port), s.owner.identity.publicKey.toString('base64url'), 'flooded', String(RATE)], /^flooding$/, 60_000);
    await sleep(2500); // the flood is in full swing: half-open at its cap, tokens spent

    // A real requester fetches through a relay (whose capture shows its handshake) meanwhile.
    await s.pointAt(relay.port);
    const res = await fetchFile({ registry: new RegistryClient(s.reg.url), peer: 'flooded', identity: await requesterIdentity(s.dir), file: 'doc.bin', via: 'udp', downloads: join(s.dir, 'dl') });
    assert.ok((await readFile(res.path)).equals(s.file), 'the fetch completed byte-exact during the flood');
    for (let i = 0; i < LISTS; i++) {
      const listed = await listFiles({ registry: new RegistryClient(s.reg.url), peer: 'flooded', identity: await requesterIdentity(s.dir) });
      assert.deepEqual(listed.files.map((f) => f.name), ['doc.bin']);
    }

    // The heap while the flood goes on, nothing else: readings 20,000 INITs apart, after a full collection.
    await sleep(500);
    const heapEarly = heapAfterGc();
    const readEarly = ep.received;
    await until(() => ep.received - readEarly >= 20_000, '20,000 more INITs read by the owner', 300_000);
    const readLate = ep.received;
    const heapLate = heapAfterGc();
    assert.equal(await flooder.stop('SIGTERM'), 0, flooder.stderr);
    const seconds = (performance.now() - started) / 1000;
    const flood = JSON.parse(flooder.stdout.trim().split('\n').pop()!) as { sent: number; smartSent: number; bytesSent: number; bytesReceived: number; cookie: boolean; seconds: number; heldBackMs: number };
    await sleep(200);

    const d = Object.fromEntries(Object.entries(ep.handshakes).map(([k, v]) => [k, v - before[k as keyof typeof ep.handshakes]])) as typeof ep.handshakes;
    const read = ep.received - before.received;
    const growth = heapLate - heapEarly;
    const between = readLate - readEarly;
    t.diagnostic(`${flood.sent} INITs flooded (+${flood.smartSent} with a cookie) in ${flood.seconds.toFixed(1)} s, ${(flood.sent / flood.seconds).toFixed(0)} a second (held back ${(flood.heldBackMs / 1000).toFixed(1)} s for a full owner queue), ${read} datagrams read by the owner; handshakes ${JSON.stringify(d)}; half-open max ${halfOpenMax}; heap ${(heapEarly / 1e6).toFixed(2)} -> ${(heapLate / 1e6).toFixed(2)} MB over ${between} datagrams (${(growth / between).toFixed(1)} B each); flood answered ${flood.bytesReceived}/${flood.bytesSent} B`);
    const lim = DEFAULT_HANDSHAKE_LIMITS;
    // Every INIT read is accounted for: worked on (accepted, or refused as a replay), refused by
    // the per-IP limit, or answered with a cookie; the rest of what the owner read is the
    // requesters' sealed traffic through the relay.
    const sealedViaRelay = relay.capture!.entries.filter((e) => e.direction === 'toTarget' && e.data[3] === Envelope.sealed).length;
    const worked = d.accepted + d.replayed;
    assert.ok(d.cookies + worked + d.rateLimited >= 0.99 * (read - sealedViaRelay), `INITs unaccounted for: ${JSON.stringify(d)}, ${read} read`);
    assert.ok(d.cookies > 10 * worked, 'the flood was answered with cookies');
    assert.ok(flood.cookie && d.rateLimited > 0, "the smart flooder's valid-mac2 INITs hit the per-IP limit");
    // Without a cookie the owner works on at most 100 INITs a second (burst 100), with one at most
    // 10 a second per IP (burst 20): the smart flooder's and the relay's. Whatever the flood.
    const allowed = lim.burst + lim.perSecond * seconds + 2 * (lim.perAddressBurst + lim.perAddressPerSecond * seconds);
    assert.ok(worked <= allowed, `${worked} INITs worked on in ${seconds.toFixed(1)} s, at most ${allowed.toFixed(0)} allowed`);
    // No state per initiation: the half-open table stays at its cap, plus what valid cookies let
    // through (10 a second per IP, each forgotten after 5 s), whatever the number of INITs.
    assert.ok(halfOpenMax >= lim.maxHalfOpen - 10, `half-open max ${halfOpenMax}: the cap was never reached`);
    assert.ok(halfOpenMax <= lim.maxHalfOpen + 100, `half-open max ${halfOpenMax}`);
    assert.ok(ep.connections <= lim.maxHalfOpen + 100);
    // ... and the heap does not grow with them: less than 64 bytes per INIT read in between (a
    // Map entry alone costs more), after a full collection each time.
    assert.ok(growth < 64 * between, `the heap grew ${growth} B over ${between} INITs`);
    assert.ok(flood.bytesReceived <= 3 * flood.bytesSent);

    // The requesters' handshakes, as the relay saw them (one mapping each): every one completed;
    // a first INIT (no cookie yet, mac2 zero) drew a COOKIE_REPLY, and the RESP answered an INIT
    // carrying mac2. (One that lands just as the owner forgets expired half-open connections may be
    // answered at once: the owner is briefly not under load. Hence several requesters.)
    const cap = relay.capture!;
    assert.equal(cap.missedBytes, 0);
    const roundTrips = cap.streams().filter((n) => {
      const frames = cap.entries.filter((e) => e.stream === n).map((e) => decodeClearFrame(e.data));
      const mac2 = new Map<number, Buffer>();
      let cookie = false;
      let answered: number | undefined;
      for (const f of frames) {
        if (typeof f === 'string') continue;
        if (f.type === Envelope.handshakeInit) mac2.set(f.id, decodeInit(f)!.mac2);
        if (f.type === Envelope.cookieReply) cookie = true;
        if (f.type === Envelope.handshakeResp) answered = decodeResp(f)!.receiverIndex;
      }
      assert.ok(answered !== undefined && mac2.has(answered), `requester ${n} got no RESP`);
      return cookie && !mac2.get(answered)!.equals(Buffer.alloc(16));
    });
    t.diagnostic(`${roundTrips.length} of ${cap.streams().length} requesters went through the cookie round trip`);
    assert.equal(cap.streams().length, 1 + LISTS);
    assert.ok(roundTrips.length >= 1, 'no requester was asked for a cookie');
  } finally {
    clearInterval(sampler);
    await flooder?.stop('SIGKILL');
    await relay.close();
  }
});
