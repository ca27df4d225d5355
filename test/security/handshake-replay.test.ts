// A replayed handshake starts nothing (PROTOCOL.md 3.4, "Replays"): a genuine HANDSHAKE_INIT,
// captured, is sent again 1,000 times from the address that made it, 1,000 times from another
// port and 1,000 times from another IP, then 500 times more re-MACed with a cookie the replayer
// got for its own address (so it passes the responder's load check). Every datagram the owner
// sends is counted at the sockets: in all, exactly one HANDSHAKE_RESP (to the original), no
// connection made; each replay is accounted for as refused by the timestamp rule, answered with
// a stateless COOKIE_REPLY (when the replays put the owner under load), or rate-limited.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cookieReplyKey, mac, openCookie } from '../../src/crypto/cookie';
import { decodeClearFrame, Envelope, writeCrc } from '../../src/wire/frame';
import { COOKIE_REPLY_BYTES, decodeCookieReply, decodeInit, MAC2_AT, RESP_BYTES } from '../../src/wire/handshake';
import { ownerEndpoint } from '../support/secure';
import { rawHandshake, RawSocket, until, type OwnerRef } from './support';

/** The envelope types of what a socket received. */
function kinds(raw: RawSocket): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { data } of raw.received) {
    const f = decodeClearFrame(data);
    const k = typeof f === 'string' ? f : f.type === Envelope.handshakeResp ? 'resp' : f.type === Envelope.cookieReply ? 'cookie' : `type ${f.type}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Sends `datagram` n times, in bursts the owner's socket can take (same process). */
async function replay(raw: RawSocket, datagram: Buffer, n: number, to: OwnerRef['address']): Promise<void> {
  for (let i = 0; i < n; i++) {
    const sent = raw.send(datagram, to);
    if (i % 50 === 49) {
      await sent;
      await sleep(2);
    }
  }
}

test('a captured INIT replayed 3,500 times from three addresses (500 with a valid cookie): one HANDSHAKE_RESP in all, nothing started, every replay counted', async (t) => {
  const o = await ownerEndpoint('replayed');
  const owner: OwnerRef = { address: o.address, publicKey: o.identity.publicKey, name: o.name };
  const ep = o.endpoint;
  const original = await RawSocket.bind();
  const otherPort = await RawSocket.bind();
  const otherIp = await RawSocket.bind('127.0.0.2');
  try {
    const hs = await rawHandshake(original, owner);
    assert.deepEqual(kinds(original), { resp: 1 }, 'the genuine INIT was answered');
    assert.equal(ep.handshakes.accepted, 1);
    assert.equal(ep.halfOpenConnections, 1, 'the original is half-open (its initiator has not spoken yet)');
    const before = { ...ep.handshakes, received: ep.received };

    for (const raw of [original, otherPort, otherIp]) await replay(raw, hs.init, 1000, owner.address);
    await until(() => ep.received - before.received === 3000, 'the owner to read the 3,000 replays');

    // A smarter replayer: the owner under load sent it a cookie for its address, sealed under a key
    // anyone derives from the owner's public key, with the INIT's own mac1 as associated data. It
    // opens it, computes a valid mac2 for the captured INIT, and replays that.
    const reply = otherPort.received.map((r) => decodeClearFrame(r.data)).find((f) => typeof f !== 'string' && f.type === Envelope.cookieReply);
    assert.ok(reply && typeof reply !== 'string', 'the replays drew a COOKIE_REPLY');
    const init = decodeClearFrame(hs.init);
    assert.ok(typeof init !== 'string');
    const cookie = openCookie(cookieReplyKey(owner.publicKey), decodeCookieReply(reply)!.sealedCookie, decodeInit(init)!.mac1);
    assert.ok(cookie, 'the cookie opens');
    const remaced = Buffer.from(hs.init);
    remaced.set(mac(cookie, remaced.subarray(0, MAC2_AT)), MAC2_AT);
    writeCrc(remaced);
    await replay(otherPort, remaced, 500, owner.address);
    await until(() => ep.received - before.received === 3500, 'the owner to read the re-MACed replays');
    await sleep(200);

    const all = [original, otherPort, otherIp].map(kinds);
    const d = Object.fromEntries(Object.entries(ep.handshakes).map(([k, v]) => [k, v - before[k as keyof typeof ep.handshakes]]));
    t.diagnostic(`received: ${JSON.stringify(all)}; owner: ${JSON.stringify(d)}`);
    assert.equal(all.reduce((n, k) => n + (k.resp ?? 0), 0), 1, 'exactly one HANDSHAKE_RESP, the original one');
    assert.equal(d.accepted, 0, 'no replay was accepted');
    assert.equal(d.connected, 0);
    // Each replay accounted for exactly once: refused by the timestamp rule, a cookie, or rate-limited.
    assert.equal(d.replayed! + d.cookies! + d.rateLimited!, 3500);
    assert.ok(d.replayed! >= 50, `${d.replayed} replays reached the timestamp rule`);
    // Only an INIT whose mac2 checks out is rate-limited per IP: the re-MACed replays got past the cookie check.
    assert.ok(d.rateLimited! > 0);
    // Only cookies came back besides: stateless, smaller than what they answer.
    const cookies = all.reduce((n, k) => n + (k.cookie ?? 0), 0);
    assert.equal(cookies, d.cookies);
    for (const k of all) assert.deepEqual(Object.keys(k).filter((x) => x !== 'resp' && x !== 'cookie'), []);
    assert.equal(original.bytesReceived + otherPort.bytesReceived + otherIp.bytesReceived, RESP_BYTES + cookies * COOKIE_REPLY_BYTES);
    assert.ok(ep.halfOpenConnections <= 1 && ep.connections <= 1, `${ep.connections} connections, ${ep.halfOpenConnections} half-open`);
  } finally {
    await Promise.all([original.close(), otherPort.close(), otherIp.close(), ep.close()]);
  }
});
