// Address validation (PROTOCOL.md 3.5): from addresses that never complete a handshake, each kind
// of request is sent for 15 s (all kinds at once, each from its own socket, against real owners
// running in this process), and every byte each socket receives is summed against every byte it
// sent: at most 3x for each kind. The owners' counters prove each kind was really read and judged.
//   - valid INITs (fresh, correct mac1): answered with a 64-byte RESP, never validated;
//   - INITs under load, about 400 a second at a second owner: COOKIE_REPLYs;
//   - version-1 LIST and GET frames: VERSION_NOT_SUPPORTED, 10 a second at most;
//   - sealed-looking junk and stray handshake answers: nothing;
//   - LIST and GET sealed under real session keys, from a port other than the handshake's (the
//     handshake's socket ignores its RESP and stays silent): path challenges only, no answer, no DATA.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PrivateKey } from '../../src/core/x25519';
import { Initiator } from '../../src/net/handshake';
import { encodeGetRequest, encodeListRequest } from '../../src/wire/control';
import { encodeClearFrame, encodeSealedHeader, FrameType, SEALED_OVERHEAD } from '../../src/wire/frame';
import { encodeCookieReply, encodeResp } from '../../src/wire/handshake';
import { connectionOver, freshInit, ownerSharing, rawHandshake, RawSocket, type OwnerRef } from './support';

const SECONDS = 15;
let quiet: Awaited<ReturnType<typeof ownerSharing>>;
let loaded: Awaited<ReturnType<typeof ownerSharing>>;
before(async () => {
  quiet = await ownerSharing('quiet', 'big.bin', 8 * 1024 * 1024);
  loaded = await ownerSharing('loaded', 'big.bin', 1024);
});
after(async () => {
  await quiet?.close();
  await loaded?.close();
});

function ref(o: typeof quiet, name: string): OwnerRef {
  return { address: { address: '127.0.0.1', port: o.owner.port }, publicKey: o.owner.identity.publicKey, name };
}

/** Runs `step` every `everyMs` until the window closes. */
async function during(end: number, everyMs: number, step: (i: number) => Promise<void> | void): Promise<void> {
  for (let i = 0; Date.now() < end; i++) {
    await step(i);
    await sleep(everyMs);
  }
}

test(`each request type from an address that never completes the handshake, ${SECONDS} s: bytes answered <= 3x bytes sent`, async (t) => {
  const A = ref(quiet, 'quiet');
  const B = ref(loaded, 'loaded');
  const qep = quiet.owner.endpoint;
  const lep = loaded.owner.endpoint;
  const names = ['inits', 'initsUnderLoad', 'v1List', 'v1Get', 'sealedJunk', 'strayAnswers', 'unvalidatedListGet', 'handshakeOnly'] as const;
  const sockets = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await RawSocket.bind()] as const))) as Record<(typeof names)[number], RawSocket>;
  const before = { quiet: { drops: { ...qep.drops }, handshakes: { ...qep.handshakes }, unsendable: qep.unsendable }, loaded: { ...lep.handshakes } };
  const end = Date.now() + SECONDS * 1000;
  let sealedLooking = 0;
  const get = (transport: 'tcp' | 'udp', sessionId: number) => encodeGetRequest({ transport, sessionId, offset: 0, expectedSha256: null, maxPayload: 1200, name: 'big.bin' });
  try {
    const initiator = new Initiator(PrivateKey.generate());
    const fresh = (o: OwnerRef) => {
      const { index, datagram } = freshInit(initiator, o);
      initiator.end(index); // this socket never reads the answer
      return datagram;
    };
    // The handshakes whose keys the 'unvalidatedListGet' socket uses: a new one every 3 s (a
    // half-open connection is forgotten after 5 s); this socket never sends a sealed frame.
    let session: ReturnType<typeof connectionOver> | undefined;
    const handshakes = during(end, 3000, async () => {
      session = connectionOver(sockets.unvalidatedListGet, await rawHandshake(sockets.handshakeOnly, A), A);
    });
    await Promise.all([
      handshakes,
      during(end, 50, () => sockets.inits.send(fresh(A), A.address)), // 20 a second: never "under load"
      during(end, 50, async () => {
        for (let k = 0; k < 20; k++) void sockets.initsUnderLoad.send(fresh(B), B.address); // 400 a second
      }),
      during(end, 20, (i) => sockets.v1List.send(encodeClearFrame(FrameType.listRequest, i + 1, encodeListRequest(0), 1), A.address)),
      during(end, 20, (i) => sockets.v1Get.send(encodeClearFrame(FrameType.getRequest, i + 1, get('udp', i + 1), 1), A.address)),
      during(end, 10, (i) => {
        if (i % 2) return sockets.sealedJunk.send(randomBytes(12 + (i % 1400)), A.address);
        sealedLooking++;
        return sockets.sealedJunk.send(Buffer.concat([encodeSealedHeader(randomInt(1, 2 ** 32), i), randomBytes(5 + 4 + 16 + (i % 1200))]), A.address);
      }),
      during(end, 20, (i) => {
        const stray = i % 2 ? encodeResp(randomInt(1, 2 ** 32), randomInt(1, 2 ** 32), randomBytes(48)) : encodeCookieReply(randomInt(1, 2 ** 32), randomBytes(44));
        return sockets.strayAnswers.send(stray, A.address);
      }),
      during(end, 50, (i) => {
        if (!session) return;
        if (i % 3 === 0) session.send(FrameType.listRequest, i + 1, encodeListRequest(0));
        else session.send(FrameType.getRequest, i + 1, get(i % 3 === 1 ? 'udp' : 'tcp', i + 1));
      }),
    ]);
    await sleep(500); // late answers count too
    const ratio: Record<string, string> = {};
    for (const n of names) ratio[n] = `${sockets[n].bytesReceived}/${sockets[n].bytesSent} B (${(sockets[n].bytesReceived / sockets[n].bytesSent).toFixed(2)}x)`;
    t.diagnostic(`answered/sent over ${SECONDS} s: ${JSON.stringify(ratio)}`);
    for (const n of names) {
      assert.ok(sockets[n].bytesSent > 0, `${n} sent nothing`);
      assert.ok(sockets[n].bytesReceived <= 3 * sockets[n].bytesSent, `${n}: ${ratio[n]}`);
    }

    // Each kind was really read and judged.
    const q = (k: keyof typeof qep.drops) => qep.drops[k] - before.quiet.drops[k];
    const d = {
      accepted: qep.handshakes.accepted - before.quiet.handshakes.accepted,
      cookies: lep.handshakes.cookies - before.loaded.cookies,
      badVersion: q('bad_version'),
      badAuth: q('bad_auth'),
      unsendable: qep.unsendable - before.quiet.unsendable,
    };
    t.diagnostic(`owners: ${JSON.stringify(d)}, quiet's drops ${JSON.stringify(Object.fromEntries(Object.keys(qep.drops).map((k) => [k, q(k as keyof typeof qep.drops)])))}`);
    assert.ok(d.accepted >= sockets.inits.datagramsSent * 0.9, `${d.accepted} of ${sockets.inits.datagramsSent} INITs answered`);
    assert.ok(sockets.inits.bytesReceived > 0, 'valid INITs were answered (RESP)');
    assert.ok(d.cookies > 0 && sockets.initsUnderLoad.bytesReceived > 0, 'the loaded owner answered with cookies');
    assert.equal(d.badVersion, sockets.v1List.datagramsSent + sockets.v1Get.datagramsSent, 'every version-1 frame counted');
    assert.ok(sockets.v1List.bytesReceived + sockets.v1Get.bytesReceived > 0, 'and some answered VERSION_NOT_SUPPORTED');
    assert.equal(sockets.sealedJunk.bytesReceived + sockets.strayAnswers.bytesReceived, 0);
    assert.ok(d.badAuth >= sealedLooking, `${d.badAuth} bad_auth for ${sealedLooking} sealed-looking datagrams`);
    assert.ok(q('rejected') >= sockets.strayAnswers.datagramsSent, 'stray handshake answers refused');
    // The sealed LIST and GET authenticated (they drew path challenges: 45-byte frames, all the
    // socket got) and their answers were withheld from the unvalidated path.
    const got = sockets.unvalidatedListGet.received;
    assert.ok(got.length > 0 && got.every((g) => g.data.length === SEALED_OVERHEAD + 8), 'only path challenges');
    assert.ok(d.unsendable > 0, 'answers withheld');
    assert.equal(qep.handshakes.connected, before.quiet.handshakes.connected);
  } finally {
    await Promise.all(names.map((n) => sockets[n].close()));
  }
});
