// The rendezvous frames (src/wire/rendezvous.ts): byte layouts, sizes (no answer larger than what
// it answers), macs, and the decoders' refusals.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import {
  INTRO_REQUEST_BYTES, IntroStatus, KEEPALIVE_MIN_BYTES, MAX_HOST_CANDIDATES, MAX_RELAYED_BYTES, RendezvousType,
  decodeIntro, decodeIntroChallenge, decodeIntroRequest, decodeIntroResponse, decodeKeepalive, decodeKeepaliveAck, decodePunch, decodeRelay,
  encodeIntro, encodeIntroChallenge, encodeIntroRequest, encodeIntroResponse, encodeKeepalive, encodeKeepaliveAck, encodePunch, encodeRelay,
  rendezvousKey, rendezvousMac, rendezvousTypeOf, verifyRendezvousMac, type Candidate,
} from '../../src/wire/rendezvous';
import { encodeClearFrame, writeCrc } from '../../src/wire/frame';

const key = rendezvousKey('the-token');
const v4: Candidate = { ip: '203.0.113.7', port: 41421 };
const v6: Candidate = { ip: '2001:db8::1', port: 3478 };
const lan = (i: number): Candidate => ({ ip: `192.168.1.${i}`, port: 4000 + i });
const lan6 = (i: number): Candidate => ({ ip: `fd00::${i}`, port: 4000 + i });

/** The same datagram with one byte changed and its CRC made right again: only the mac can tell. */
function tampered(d: Buffer, at: number): Buffer {
  const b = Buffer.from(d);
  b[at]! ^= 0x01;
  return writeCrc(b);
}

test('rendezvousKey is SHA-256 of the token: the hash the registry stores (hex) as raw bytes', () => {
  assert.deepEqual(rendezvousKey('abc'), createHash('sha256').update('abc').digest());
  assert.equal(rendezvousKey('abc').toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('KEEPALIVE: byte layout, padded to 40 bytes, mac over every byte before it', () => {
  const d = encodeKeepalive({ name: 'al', sequence: 7 }, key);
  assert.equal(d.length, KEEPALIVE_MIN_BYTES);
  assert.equal(d.subarray(0, 8).toString('hex'), '5053022000000000');
  assert.equal(d[8], 2);
  assert.equal(d.subarray(9, 11).toString(), 'al');
  assert.equal(d.readBigUInt64BE(11), 7n);
  assert.ok(d.subarray(19, 20).equals(Buffer.alloc(1)), 'one zero byte of padding');
  assert.deepEqual(d.subarray(20, 36), rendezvousMac(key, d.subarray(0, 20)));
  assert.equal(d.readUInt32BE(36), crc32(d.subarray(0, 36)));
  const k = decodeKeepalive(d)!;
  assert.equal(k.name, 'al');
  assert.equal(k.sequence, 7);
  assert.ok(verifyRendezvousMac(key, k));
  assert.ok(!verifyRendezvousMac(rendezvousKey('another-token'), k));
  // A long name needs no padding; the largest sequence survives.
  const long = encodeKeepalive({ name: 'n'.repeat(32), sequence: Number.MAX_SAFE_INTEGER }, key);
  assert.equal(long.length, 8 + 33 + 8 + 16 + 4);
  assert.equal(decodeKeepalive(long)!.sequence, Number.MAX_SAFE_INTEGER);
  // A u64 above 2^53 − 1 is malformed (PROTOCOL.md 1), even under a good mac.
  const over = Buffer.from(long);
  over.writeBigUInt64BE(2n ** 53n, 41);
  assert.equal(decodeKeepalive(writeCrc(over)), null);
  assert.throws(() => encodeKeepalive({ name: 'a', sequence: 2 ** 53 }, key));
  assert.throws(() => encodeKeepalive({ name: 'a', sequence: 1.5 }, key));
  // Any byte changed (CRC fixed): the mac refuses it.
  for (let at = 0; at < 36; at++) {
    const t = decodeKeepalive(tampered(d, at));
    assert.ok(!t || !verifyRendezvousMac(key, t), `byte ${at}`);
  }
  assert.throws(() => encodeKeepalive({ name: '', sequence: 1 }, key));
  assert.throws(() => encodeKeepalive({ name: 'a', sequence: -1 }, key));
});

test('KEEPALIVE_ACK: 27 bytes (IPv4) or 39 (IPv6), never larger than any KEEPALIVE', () => {
  const a4 = encodeKeepaliveAck({ sequence: 9, observed: v4 });
  const a6 = encodeKeepaliveAck({ sequence: 9, observed: v6 });
  assert.equal(a4.length, 27);
  assert.equal(a6.length, 39);
  assert.equal(a4.subarray(16, 23).toString('hex'), '04cb007107a1cd', 'family 4, 203.0.113.7, port 41421');
  assert.ok(a6.length <= encodeKeepalive({ name: 'x', sequence: 1 }, key).length, 'the shortest KEEPALIVE');
  assert.deepEqual(decodeKeepaliveAck(a4), { sequence: 9, observed: v4 });
  assert.deepEqual(decodeKeepaliveAck(a6), { sequence: 9, observed: v6 });
  // IPv4-mapped IPv6 goes out as IPv4.
  assert.deepEqual(decodeKeepaliveAck(encodeKeepaliveAck({ sequence: 1, observed: { ip: '::ffff:10.1.2.3', port: 9 } }))!.observed, { ip: '10.1.2.3', port: 9 });
});

test('INTRO_REQUEST: padded to 160 bytes; 8 IPv4 host candidates and a 48-byte token still fit', () => {
  const r = { requestId: 0xdeadbeef, owner: 'owner', hosts: [lan(1), lan(2)], token: Buffer.alloc(0) };
  const d = encodeIntroRequest(r);
  assert.equal(d.length, INTRO_REQUEST_BYTES);
  assert.equal(d.readUInt32BE(4), 0xdeadbeef);
  assert.deepEqual(decodeIntroRequest(d), r);
  const full = { requestId: 1, owner: 'o'.repeat(32), hosts: Array.from({ length: 8 }, (_, i) => lan(i + 1)), token: randomBytes(48) };
  const fd = encodeIntroRequest(full);
  assert.equal(fd.length, INTRO_REQUEST_BYTES);
  assert.deepEqual(decodeIntroRequest(fd), full);
  // IPv6 host candidates may make it larger; never smaller.
  const big = encodeIntroRequest({ ...full, hosts: Array.from({ length: 8 }, (_, i) => lan6(i + 1)) });
  assert.ok(big.length > INTRO_REQUEST_BYTES);
  assert.equal(decodeIntroRequest(big)!.hosts.length, 8);
  assert.throws(() => encodeIntroRequest({ ...r, hosts: Array.from({ length: 9 }, (_, i) => lan(i + 1)) }));
  assert.throws(() => encodeIntroRequest({ ...r, token: Buffer.alloc(49) }));
});

test('INTRO_CHALLENGE: smaller than the request it answers', () => {
  const c = { requestId: 5, token: randomBytes(20) };
  const d = encodeIntroChallenge(c);
  assert.equal(d.length, 8 + 2 + 20 + 4);
  assert.ok(d.length < INTRO_REQUEST_BYTES);
  assert.deepEqual(decodeIntroChallenge(d), c);
});

test('INTRO_RESPONSE: none candidates are one byte; host candidates left out past maxBytes', () => {
  const refused = { requestId: 3, status: IntroStatus.unknownOwner, owner: null, hosts: [], relaySession: 0, relay: null };
  const rd = encodeIntroResponse(refused);
  assert.equal(rd.length, 8 + 1 + 1 + 1 + 4 + 1 + 4);
  assert.deepEqual(decodeIntroResponse(rd), refused);
  const ok = { requestId: 4, status: IntroStatus.ok, owner: v4, hosts: [lan(1), lan(2)], relaySession: 0x01020304, relay: v6 };
  assert.deepEqual(decodeIntroResponse(encodeIntroResponse(ok)), ok);
  // The largest answer: every candidate IPv6. Bounded by the request's size, it keeps what fits.
  const huge = { ...ok, owner: v6, hosts: Array.from({ length: MAX_HOST_CANDIDATES }, (_, i) => lan6(i + 1)) };
  assert.ok(encodeIntroResponse(huge).length > INTRO_REQUEST_BYTES);
  const fit = encodeIntroResponse(huge, INTRO_REQUEST_BYTES);
  assert.ok(fit.length <= INTRO_REQUEST_BYTES);
  const back = decodeIntroResponse(fit)!;
  assert.deepEqual(back.hosts, huge.hosts.slice(0, back.hosts.length));
  assert.equal(back.hosts.length, Math.floor((INTRO_REQUEST_BYTES - (12 + 1 + 19 + 1 + 4 + 19)) / 19));
  // A status byte beyond busy is not a response.
  const bad = Buffer.from(rd);
  bad[8] = 4;
  assert.equal(decodeIntroResponse(writeCrc(bad)), null);
});

test('INTRO: macced with the owner key; tampering or another key is refused', () => {
  const i = { sequence: 12, requester: v4, hosts: [lan(3)], relaySession: 77, nonce: randomBytes(8) };
  const d = encodeIntro(i, key);
  assert.equal(d.length, 8 + 8 + 7 + 1 + 7 + 4 + 8 + 16 + 4);
  const back = decodeIntro(d)!;
  assert.deepEqual({ ...back, signed: undefined, mac: undefined }, { ...i, signed: undefined, mac: undefined });
  assert.ok(verifyRendezvousMac(key, back));
  assert.ok(!verifyRendezvousMac(rendezvousKey('x'), back));
  for (let at = 0; at < d.length - 4; at++) {
    const t = decodeIntro(tampered(d, at));
    assert.ok(!t || !verifyRendezvousMac(key, t), `byte ${at}`);
  }
});

test('PUNCH and RELAY', () => {
  const n = randomBytes(8);
  assert.equal(encodePunch(n).length, 20);
  assert.deepEqual(decodePunch(encodePunch(n)), { nonce: n });
  const inner = randomBytes(MAX_RELAYED_BYTES);
  const r = encodeRelay(0xfffffffe, inner);
  assert.equal(r.length, 1472);
  assert.equal(r.subarray(0, 8).toString('hex'), '50530227fffffffe');
  const back = decodeRelay(r)!;
  assert.equal(back.session, 0xfffffffe);
  assert.deepEqual(back.inner, inner);
  assert.throws(() => encodeRelay(1, Buffer.alloc(MAX_RELAYED_BYTES + 1)));
  assert.equal(decodeRelay(encodeRelay(0, inner)), null, 'session 0 is none');
  assert.equal(decodeRelay(r.subarray(0, 8)), null, 'nothing inside');
  assert.equal(decodeRelay(Buffer.concat([r, Buffer.alloc(1)])), null, 'over 1472 bytes');
});

test('rendezvousTypeOf dispatches PS version-2 frames of 0x20-0x2f only', () => {
  assert.equal(rendezvousTypeOf(encodePunch(randomBytes(8))), RendezvousType.punch);
  assert.equal(rendezvousTypeOf(encodeRelay(1, Buffer.from('x'))), RendezvousType.relay);
  assert.equal(rendezvousTypeOf(encodeClearFrame(0x01, 1)), null, 'a handshake frame');
  assert.equal(rendezvousTypeOf(encodeClearFrame(0x20, 0, [], 1)), null, 'version 1');
  assert.equal(rendezvousTypeOf(Buffer.from([0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42])), null, 'STUN');
  assert.equal(rendezvousTypeOf(Buffer.from('PS')), null, 'too short');
});

test('decoders refuse: wrong type, bad CRC, trailing or nonzero padding, bad candidates, oversized lists', () => {
  const ka = encodeKeepalive({ name: 'al', sequence: 1 }, key);
  assert.equal(decodeKeepaliveAck(ka), null, 'a KEEPALIVE is not an ACK');
  const crc = Buffer.from(ka);
  crc[crc.length - 1]! ^= 1;
  assert.equal(decodeKeepalive(crc), null, 'CRC');
  const pad = Buffer.from(ka);
  pad[19] = 1;
  assert.equal(decodeKeepalive(writeCrc(pad)), null, 'nonzero padding');
  const id = Buffer.from(ka);
  id.writeUInt32BE(1, 4);
  assert.equal(decodeKeepalive(writeCrc(id)), null, 'the u32 field is 0');
  const ack = encodeKeepaliveAck({ sequence: 1, observed: v4 });
  assert.equal(decodeKeepaliveAck(encodeClearFrame(0x21, 0, [ack.subarray(8, -4), Buffer.from([1])])), null, 'trailing byte');
  const fam = Buffer.from(ack);
  fam[16] = 5;
  assert.equal(decodeKeepaliveAck(writeCrc(fam)), null, 'family 5');
  fam[16] = 0;
  assert.equal(decodeKeepaliveAck(writeCrc(fam)), null, 'family 0 where a candidate is required');
  const port0 = Buffer.from(ack);
  port0.writeUInt16BE(0, 21);
  assert.equal(decodeKeepaliveAck(writeCrc(port0)), null, 'port 0');
  const req = encodeIntroRequest({ requestId: 1, owner: 'o', hosts: [lan(1)], token: Buffer.alloc(0) });
  const nine = Buffer.from(req);
  nine[10] = 9;
  assert.equal(decodeIntroRequest(writeCrc(nine)), null, '9 host candidates');
  const tok = Buffer.from(req);
  tok.writeUInt16BE(49, 18);
  assert.equal(decodeIntroRequest(writeCrc(tok)), null, 'a 49-byte token');
  const utf = encodeClearFrame(RendezvousType.introRequest, 1, [Buffer.from([2, 0xc3, 0x28, 0, 0, 0]), Buffer.alloc(140)]);
  assert.equal(decodeIntroRequest(utf), null, 'a name that is not UTF-8');
  assert.equal(decodeIntroRequest(encodeClearFrame(RendezvousType.introRequest, 1, [Buffer.from([0, 0, 0, 0])])), null, 'an empty name');
  assert.equal(decodePunch(encodeClearFrame(RendezvousType.punch, 0, randomBytes(9))), null, 'a 9-byte nonce');
});
