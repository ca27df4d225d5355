// Spoofing during a UDP transfer, from a third address that watches the path (the relay's capture,
// with 20 ms of delay each way so that the attacker's copies arrive first): forged ABORT and DATA
// frames addressed to the right connections with the very counters the next genuine frames carry,
// a genuine ACK turned into an ABORT by flipping its (known) type bits, genuine frames replayed,
// and the path challenges those replays draw forwarded to the other peer to win a PATH_RESPONSE.
// Nothing ends the transfer, nothing burns a genuine counter, neither connection ever moves to
// the attacker, no DATA ever reaches it, and the file is byte-exact. A real NAT rebinding is still
// followed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Remote, SecureConnection } from '../../src/net/connection';
import { decodeSealedFrame, encodeSealedHeader, Envelope, FrameType, MESSAGE_HEADER_BYTES, SEALED_HEADER_BYTES, SEALED_OVERHEAD, TAG_BYTES } from '../../src/wire/frame';
import { tempDir } from '../support/cli';
import type { Captured } from '../support/relay';
import { pair, randomFile, transfer, type Pair } from '../transfer/support';
import { RawSocket, until } from './support';

const SIZE = 4 * 1024 * 1024 + 9;
/** A sealed PATH_CHALLENGE or PATH_RESPONSE: 8 bytes of body. */
const PATH_FRAME_BYTES = SEALED_OVERHEAD + 8;
let dir: string;
let src: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ dir, cleanup } = await tempDir('p2pshare-spoofing-'));
  src = join(dir, 'src.bin');
  await randomFile(src, SIZE);
});
after(async () => cleanup());

/**
 * A transfer through a relay that shows every datagram to `tap` as it arrives (before its 20 ms
 * delay), and an attacker socket; the counters of both endpoints as they were before it starts.
 */
async function watchedTransfer(tap: (c: Captured, s: Setting) => void) {
  let setting: Setting | undefined;
  let look = () => {};
  const onData = (c: Captured) => {
    if (!setting) return;
    look();
    tap(c, setting);
  };
  const p = await pair({ toClient: { delayMs: 20 }, toTarget: { delayMs: 20 }, capture: { maxBytes: 0, onData } });
  const attacker = await RawSocket.bind();
  const requesterConn = p.toOwner as SecureConnection;
  const ownerConn = p.toRequester as SecureConnection;
  const s: Setting = {
    p,
    attacker,
    requester: { address: '127.0.0.1', port: p.requester.port },
    owner: { address: '127.0.0.1', port: p.owner.port },
    requesterIndex: requesterConn.localIndex,
    ownerIndex: ownerConn.localIndex,
    conns: { requester: requesterConn, owner: ownerConn },
    moved: [],
  };
  const where = { requester: { ...requesterConn.remote }, owner: { ...ownerConn.remote } };
  assert.equal(where.requester.port, p.relay!.port);
  // Whether either connection points anywhere else, looked at on every datagram either way.
  look = () => {
    if (!same(requesterConn.remote, where.requester)) s.moved.push(`requester -> ${requesterConn.remote.port}`);
    if (!same(ownerConn.remote, where.owner)) s.moved.push(`owner -> ${ownerConn.remote.port}`);
  };
  attacker.onMessage(look);
  try {
    // Let the handshake's last probes land: from here, every datagram is counted on both sides.
    await new Promise((res) => setTimeout(res, 100));
    const before = snapshot(p);
    const relayed = { toClient: p.relay!.counters.toClient.forwarded, toTarget: p.relay!.counters.toTarget.forwarded };
    setting = s;
    const r = await transfer(p, src, SIZE, dir);
    await new Promise((res) => setTimeout(res, 300)); // the attacker's last datagrams land
    look();
    const after = snapshot(p);
    assert.ok((await readFile(r.partPath)).equals(await readFile(src)), 'byte-exact');
    return {
      s,
      // Datagrams each endpoint read that did not come through the relay: the attacker's.
      fromAttacker: {
        requester: after.requester.received - before.requester.received - (p.relay!.counters.toClient.forwarded - relayed.toClient),
        owner: after.owner.received - before.owner.received - (p.relay!.counters.toTarget.forwarded - relayed.toTarget),
      },
      delta: (side: 'requester' | 'owner', k: 'bad_auth' | 'replayed') => after[side].drops[k] - before[side].drops[k],
    };
  } finally {
    await attacker.close();
    await p.close();
  }
}

interface Setting {
  p: Pair;
  attacker: RawSocket;
  requester: Remote;
  owner: Remote;
  /** Index of the requester's connection (frames to the requester name it), and of the owner's. */
  requesterIndex: number;
  ownerIndex: number;
  conns: { requester: SecureConnection; owner: SecureConnection };
  /** Every time a connection was seen pointing elsewhere. */
  moved: string[];
}

function snapshot(p: Pair) {
  return { requester: { received: p.requester.received, drops: { ...p.requester.drops } }, owner: { received: p.owner.received, drops: { ...p.owner.drops } } };
}

function same(a: Remote, b: Remote): boolean {
  return a.address === b.address && a.port === b.port;
}

function sealedCounter(c: Captured): number | null {
  if (c.data[3] !== Envelope.sealed) return null;
  return decodeSealedFrame(c.data)?.counter ?? null;
}

test('forged ABORT and DATA with the counters of the next genuine frames, and a genuine ACK turned into an ABORT: all bad_auth, no counter burnt, byte-exact', async (t) => {
  const forged = { requester: 0, owner: 0 };
  let seen = 0;
  const w = await watchedTransfer((c, s) => {
    const counter = sealedCounter(c);
    if (counter === null || seen++ % 3) return;
    if (c.direction === 'toClient') {
      // A DATA of the owner is 20 ms away from the requester: a forged DATA of the same size and
      // counter, and a forged ABORT with the counter after it, get there first.
      s.attacker.sendRaw(Buffer.concat([encodeSealedHeader(s.requesterIndex, counter), randomBytes(c.data.length - SEALED_HEADER_BYTES)]), s.requester);
      s.attacker.sendRaw(Buffer.concat([encodeSealedHeader(s.requesterIndex, counter + 1), randomBytes(MESSAGE_HEADER_BYTES + 1 + TAG_BYTES)]), s.requester);
      forged.requester += 2;
    } else {
      // An ACK of the requester: ChaCha20 is a stream cipher and the first plaintext byte is the
      // type (0x11), so flipping (0x11 ^ 0x13) there makes it an ABORT, if the tag let it pass.
      const aborting = Buffer.from(c.data);
      aborting[SEALED_HEADER_BYTES]! ^= FrameType.ack ^ FrameType.abort;
      s.attacker.sendRaw(aborting, s.owner);
      s.attacker.sendRaw(Buffer.concat([encodeSealedHeader(s.ownerIndex, counter + 1), randomBytes(MESSAGE_HEADER_BYTES + 1 + TAG_BYTES)]), s.owner);
      forged.owner += 2;
    }
  });
  t.diagnostic(`forged: ${JSON.stringify(forged)}; read: ${JSON.stringify(w.fromAttacker)}; bad_auth: requester ${w.delta('requester', 'bad_auth')}, owner ${w.delta('owner', 'bad_auth')}`);
  assert.ok(forged.requester >= 1000 && forged.owner >= 50, `forged ${JSON.stringify(forged)}`);
  for (const side of ['requester', 'owner'] as const) {
    assert.ok(w.fromAttacker[side] >= 0.95 * forged[side], `the ${side} read ${w.fromAttacker[side]} of ${forged[side]} forged datagrams`);
    assert.equal(w.delta(side, 'bad_auth'), w.fromAttacker[side], `every forged datagram the ${side} read was refused as bad_auth`);
    // A forged frame that fails authentication does not take its counter: the genuine one is
    // accepted after it, so no genuine frame was lost as a "replay".
    assert.equal(w.delta(side, 'replayed'), 0);
  }
  assert.equal(w.s.attacker.bytesReceived, 0, 'no answer to a forged frame');
  assert.deepEqual(w.s.moved, []);
});

test('genuine frames replayed from a third address ahead of the originals: counted as replays, their path challenges go unanswered, nothing moves', async (t) => {
  const replays = { requester: 0, owner: 0 };
  let seen = 0;
  const w = await watchedTransfer((c, s) => {
    if (sealedCounter(c) === null || seen++ % 4) return;
    const to = c.direction === 'toClient' ? 'requester' : 'owner';
    s.attacker.sendRaw(c.data, s[to]);
    replays[to]++;
  });
  const got = w.s.attacker.received;
  t.diagnostic(`replays: ${JSON.stringify(replays)}; replayed: requester ${w.delta('requester', 'replayed')}, owner ${w.delta('owner', 'replayed')}; challenges to the attacker: ${got.length}`);
  for (const side of ['requester', 'owner'] as const) {
    assert.ok(w.fromAttacker[side] >= 0.95 * replays[side], `the ${side} read ${w.fromAttacker[side]} of ${replays[side]} replays`);
    // Each replayed counter is taken once: by the copy that came first; the other is the replay.
    assert.equal(w.delta(side, 'replayed'), w.fromAttacker[side]);
    assert.equal(w.delta(side, 'bad_auth'), 0);
  }
  // The copies that came first drew path challenges to the attacker, at most one per 100 ms per
  // connection, from both peers; they are all it ever received: 45-byte challenges, no DATA.
  assert.ok(got.some((g) => g.from.port === w.s.owner.port) && got.some((g) => g.from.port === w.s.requester.port), 'challenges from both peers');
  assert.deepEqual([...new Set(got.map((g) => g.data.length))], [PATH_FRAME_BYTES]);
  for (const c of Object.values(w.s.conns)) {
    assert.ok(c.path.challenges > 0 && c.path.challenges <= got.length);
    assert.equal(c.path.moves, 0);
  }
  assert.deepEqual(w.s.moved, []);
});

test('replays plus the challenges they draw forwarded to the other peer (to win a PATH_RESPONSE from it): no connection ever moves, no DATA reaches the attacker', async (t) => {
  const forwarded = { challenges: 0, responses: 0 };
  let seen = 0;
  let armed = false;
  const w = await watchedTransfer((c, s) => {
    if (!armed) {
      armed = true;
      // What a peer sends the attacker goes on to the other peer, from the attacker's address: a
      // challenge from one peer reaches the other, whose answer (if any) comes back here and is
      // passed on to the challenger, as if the attacker's address were the peer's new one.
      s.attacker.onMessage((data, from) => {
        const toOwner = from.port === s.requester.port;
        s.attacker.sendRaw(data, toOwner ? s.owner : s.requester);
        if (toOwner) forwarded.responses++;
        else forwarded.challenges++;
      });
    }
    if (sealedCounter(c) === null || seen++ % 4) return;
    s.attacker.sendRaw(c.data, c.direction === 'toClient' ? s.requester : s.owner);
  });
  const { requester, owner } = w.s.conns;
  t.diagnostic(`forwarded ${JSON.stringify(forwarded)}; the attacker received ${w.s.attacker.received.length} datagrams, ${w.s.attacker.bytesReceived} bytes; owner ${JSON.stringify(owner.path)}, requester ${JSON.stringify(requester.path)}`);
  assert.ok(forwarded.challenges > 0 && forwarded.responses > 0, 'the replays drew path challenges from both peers');
  // Each peer got the other's challenges from the attacker's address, and refused to answer them.
  assert.ok(requester.path.refused > 0 && owner.path.refused > 0, 'forwarded challenges reached the peers');
  assert.equal(requester.path.moves + owner.path.moves, 0);
  assert.deepEqual(w.s.moved, [], 'a connection pointed at the attacker');
  assert.ok(w.s.attacker.received.every((g) => g.data.length === PATH_FRAME_BYTES), 'only path frames reached the attacker, no DATA');
});

test('a real NAT rebinding mid-transfer is still followed: the owner challenges the new mapping, the requester answers, the connection moves once, byte-exact', async () => {
  const p = await pair({ toClient: {}, toTarget: {} });
  try {
    const ownerConn = p.toRequester as SecureConnection;
    const requesterConn = p.toOwner as SecureConnection;
    const old = { ...ownerConn.remote };
    const done = transfer(p, src, SIZE, dir);
    await until(() => p.relay!.counters.toClient.forwarded > 500, 'the transfer under way');
    p.relay!.rebind(); // the requester's NAT gives it a new mapping; DATA to the old one is lost
    const r = await done;
    assert.ok((await readFile(r.partPath)).equals(await readFile(src)), 'byte-exact');
    assert.ok(ownerConn.path.challenges >= 1);
    assert.equal(ownerConn.path.moves, 1, 'the owner followed the requester to its new mapping');
    assert.notEqual(ownerConn.remote.port, old.port);
    assert.equal(requesterConn.path.refused, 0, "the owner's challenge came from the requester's path and was answered");
    assert.deepEqual(requesterConn.remote, { address: '127.0.0.1', port: p.relay!.port });
  } finally {
    await p.close();
  }
});
