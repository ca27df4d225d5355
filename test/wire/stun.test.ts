// STUN codec (RFC 8489) checked against the RFC 5769 sample messages, plus pure fuzzing.
// The UDP server itself is tested in test/registry/stun-server.test.ts.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  Attr,
  BINDING_METHOD,
  StunClass,
  addressBytes,
  classifyRequest,
  decodeAddress,
  decodeStunMessage,
  encodeBindingRequest,
  encodeBindingSuccess,
  encodeUnknownAttributes,
  fingerprintOf,
  formatAddress,
  joinType,
  normalizeSource,
  splitType,
  type StunMessage,
} from '../../src/wire/stun';
import { seededRandom } from '../support/random';
import { mutateDatagram, withAttribute, legacyRequest } from '../support/stun';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// RFC 5769 section 2.1 "Sample Request" (short-term credentials, password below).
const RFC5769_REQUEST = hex(`
  00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86
  fa 87 df ae 80 22 00 10 53 54 55 4e 20 74 65 73
  74 20 63 6c 69 65 6e 74 00 24 00 04 6e 00 01 ff
  80 29 00 08 93 2f f9 b1 51 26 3b 36 00 06 00 09
  65 76 74 6a 3a 68 36 76 59 20 20 20 00 08 00 14
  9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49
  c1 b5 71 a2 80 28 00 04 e5 7a 3b cf`);
const RFC5769_PASSWORD = 'VOkJxbRl1RmTxUk/WvJxBt';

// RFC 5769 section 2.2 "Sample IPv4 Response": 192.0.2.1 port 32853.
const RFC5769_IPV4_RESPONSE = hex(`
  01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86
  fa 87 df ae 80 22 00 0b 74 65 73 74 20 76 65 63
  74 6f 72 20 00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9
  2a f9 ba 53 f0 6b e7 d7 80 28 00 04 c0 7d 4c 96`);

// RFC 5769 section 2.3 "Sample IPv6 Response": 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
const RFC5769_IPV6_RESPONSE = hex(`
  01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86
  fa 87 df ae 80 22 00 0b 74 65 73 74 20 76 65 63
  74 6f 72 20 00 20 00 14 00 02 a1 47 01 13 a9 fa
  a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9 00 08 00 14
  a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75
  bf e3 ed 41 80 28 00 04 c8 fb 0b 4c`);

const RFC5769_TID = hex('b7 e7 a7 01 bc 34 d6 86 fa 87 df ae');

function decodeOk(bytes: Uint8Array): StunMessage {
  const r = decodeStunMessage(bytes);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.message;
}

const attr = (m: StunMessage, type: number) => m.attributes.find((a) => a.type === type)?.value;

test('RFC 5769 2.1 sample request decodes as specified, fingerprint checked', () => {
  const m = decodeOk(RFC5769_REQUEST);
  assert.equal(m.method, BINDING_METHOD);
  assert.equal(m.cls, StunClass.request);
  assert.equal(m.legacy, false);
  assert.deepEqual(m.transactionId, RFC5769_TID);
  assert.equal(m.fingerprint, 'valid');
  assert.deepEqual(
    m.attributes.map((a) => a.type),
    [Attr.SOFTWARE, Attr.PRIORITY, 0x8029 /* ICE-CONTROLLED */, Attr.USERNAME, Attr.MESSAGE_INTEGRITY, Attr.FINGERPRINT],
  );
  assert.equal(attr(m, Attr.SOFTWARE)!.toString('utf8'), 'STUN test client');
  assert.equal(attr(m, Attr.PRIORITY)!.readUInt32BE(0), 0x6e0001ff);
  assert.equal(attr(m, 0x8029)!.toString('hex'), '932ff9b151263b36');
  // 9 bytes, padded with spaces in the sample: the padding is not part of the value.
  assert.equal(attr(m, Attr.USERNAME)!.toString('utf8'), 'evtj:h6vY');
  assert.equal(attr(m, Attr.FINGERPRINT)!.readUInt32BE(0), 0xe57a3bcf);
  assert.equal(fingerprintOf(RFC5769_REQUEST.subarray(0, RFC5769_REQUEST.length - 8)), 0xe57a3bcf);
  // The server does not check MESSAGE-INTEGRITY (it has no credentials); here we only prove the
  // vector was typed right: HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, with the length
  // field counting up to and including MESSAGE-INTEGRITY.
  const miAt = RFC5769_REQUEST.length - 8 - 24;
  const signed = Buffer.from(RFC5769_REQUEST.subarray(0, miAt));
  signed.writeUInt16BE(miAt + 24 - 20, 2);
  assert.deepEqual(createHmac('sha1', RFC5769_PASSWORD).update(signed).digest(), attr(m, Attr.MESSAGE_INTEGRITY));
  // USERNAME, MESSAGE-INTEGRITY and PRIORITY are comprehension-required and understood: answered.
  assert.equal(classifyRequest(RFC5769_REQUEST).kind, 'binding');
});

test('RFC 5769 2.1 with any one bit flipped is dropped unless it no longer has a FINGERPRINT', () => {
  // A flip can make an attribute length swallow the FINGERPRINT (or rename it): what is left is a
  // request without FINGERPRINT, which RFC 8489 allows. Every other flip must be caught.
  let dropped = 0;
  for (let bit = 0; bit < RFC5769_REQUEST.length * 8; bit++) {
    const bad = Buffer.from(RFC5769_REQUEST);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    const v = classifyRequest(bad);
    if (v.kind === 'drop') dropped++;
    else assert.equal(v.message.fingerprint, 'absent', `bit ${bit} was not caught`);
  }
  assert.ok(dropped >= RFC5769_REQUEST.length * 8 - 32, `only ${dropped} flips were dropped`);
  const badFp = Buffer.from(RFC5769_REQUEST);
  badFp[badFp.length - 1]! ^= 0xff;
  const v = classifyRequest(badFp);
  assert.ok(v.kind === 'drop' && v.category === 'fingerprint');
});

test('RFC 5769 2.2 IPv4 response: XOR-MAPPED-ADDRESS is 192.0.2.1:32853', () => {
  const m = decodeOk(RFC5769_IPV4_RESPONSE);
  assert.equal(m.method, BINDING_METHOD);
  assert.equal(m.cls, StunClass.success);
  assert.equal(m.fingerprint, 'valid');
  assert.deepEqual(m.transactionId, RFC5769_TID);
  assert.equal(attr(m, Attr.SOFTWARE)!.toString('utf8'), 'test vector');
  assert.deepEqual(decodeAddress(attr(m, Attr.XOR_MAPPED_ADDRESS)!, m.transactionId), { family: 4, address: '192.0.2.1', port: 32853 });
  // A response is not something the server answers.
  assert.deepEqual(classifyRequest(RFC5769_IPV4_RESPONSE).kind, 'drop');
});

test('RFC 5769 2.3 IPv6 response: XOR-MAPPED-ADDRESS is [2001:db8:1234:5678:11:2233:4455:6677]:32853', () => {
  const m = decodeOk(RFC5769_IPV6_RESPONSE);
  assert.equal(m.fingerprint, 'valid');
  assert.deepEqual(decodeAddress(attr(m, Attr.XOR_MAPPED_ADDRESS)!, m.transactionId), {
    family: 6,
    address: '2001:db8:1234:5678:11:2233:4455:6677',
    port: 32853,
  });
});

test('our success response carries what RFC 5769 2.2 carries, byte for byte in the address', () => {
  const request = decodeOk(RFC5769_REQUEST);
  const out = encodeBindingSuccess(request, { family: 4, address: '192.0.2.1', port: 32853 }, 'test vector');
  const m = decodeOk(out);
  assert.equal(out.readUInt16BE(0), 0x0101);
  assert.deepEqual(attr(m, Attr.XOR_MAPPED_ADDRESS), hex('00 01 a1 47 e1 12 a6 43'));
  assert.deepEqual(attr(m, Attr.SOFTWARE), Buffer.from('test vector'));
  // The sample's SOFTWARE is padded with spaces, ours with zeros; the two agree up to there.
  assert.deepEqual(out.subarray(4, 20), RFC5769_IPV4_RESPONSE.subarray(4, 20));
});

test('encode then decode a success response round-trips (IPv4, IPv6, mapped, legacy)', () => {
  const cases = [
    { family: 4 as const, address: '127.0.0.1', port: 1 },
    { family: 4 as const, address: '203.0.113.250', port: 65535 },
    { family: 6 as const, address: '::1', port: 3478 },
    { family: 6 as const, address: '2001:db8::8:800:200c:417a', port: 0 },
    { family: 6 as const, address: 'fe80::1', port: 40000 },
  ];
  for (const mapped of cases) {
    const tid = randomBytes(12);
    const request = decodeOk(encodeBindingRequest(tid, { fingerprint: true, software: 'client' }));
    assert.equal(classifyRequest(encodeBindingRequest(tid)).kind, 'binding');
    const m = decodeOk(encodeBindingSuccess(request, mapped, 'p2pshare registry'));
    assert.equal(m.cls, StunClass.success);
    assert.equal(m.method, BINDING_METHOD);
    assert.deepEqual(m.transactionId, tid);
    assert.equal(m.fingerprint, 'valid');
    assert.deepEqual(m.attributes.map((a) => a.type), [Attr.XOR_MAPPED_ADDRESS, Attr.MAPPED_ADDRESS, Attr.SOFTWARE, Attr.FINGERPRINT]);
    assert.deepEqual(decodeAddress(attr(m, Attr.XOR_MAPPED_ADDRESS)!, tid), mapped);
    assert.deepEqual(decodeAddress(attr(m, Attr.MAPPED_ADDRESS)!), mapped);
    assert.equal(attr(m, Attr.SOFTWARE)!.toString(), 'p2pshare registry');
  }
  // An RFC 3489 request (no cookie, 16-byte id) gets MAPPED-ADDRESS, its whole id back, no FINGERPRINT.
  const legacyId = randomBytes(16);
  legacyId.writeUInt32BE(0x01020304, 0);
  const v = classifyRequest(legacyRequest(legacyId));
  assert.equal(v.kind, 'binding');
  const out = encodeBindingSuccess(v.kind === 'binding' ? v.message : assert.fail(), { family: 4, address: '10.1.2.3', port: 5 }, 'x');
  assert.deepEqual(out.subarray(4, 20), legacyId);
  const lm = decodeOk(out);
  assert.equal(lm.legacy, true);
  assert.deepEqual(lm.attributes.map((a) => a.type), [Attr.MAPPED_ADDRESS, Attr.SOFTWARE]);
  assert.deepEqual(decodeAddress(attr(lm, Attr.MAPPED_ADDRESS)!), { family: 4, address: '10.1.2.3', port: 5 });
});

test('message type: method and class bits interleave as RFC 8489 section 5 draws them', () => {
  assert.equal(joinType(BINDING_METHOD, StunClass.request), 0x0001);
  assert.equal(joinType(BINDING_METHOD, StunClass.indication), 0x0011);
  assert.equal(joinType(BINDING_METHOD, StunClass.success), 0x0101);
  assert.equal(joinType(BINDING_METHOD, StunClass.error), 0x0111);
  for (let method = 0; method < 0x1000; method++) {
    for (let cls = 0; cls < 4; cls++) {
      const type = joinType(method, cls);
      assert.ok(type < 0x4000);
      assert.deepEqual(splitType(type), { method, cls });
    }
  }
});

test('unknown comprehension-required attributes get a 420 listing them; optional ones are ignored', () => {
  const tid = randomBytes(12);
  const base = encodeBindingRequest(tid);
  const v = classifyRequest(withAttribute(withAttribute(base, 0x7777, Buffer.alloc(3)), 0x0002, Buffer.alloc(8)));
  assert.equal(v.kind, 'unknown-attributes');
  assert.deepEqual(v.kind === 'unknown-attributes' && v.unknown, [0x7777, 0x0002]);
  const m = decodeOk(encodeUnknownAttributes(v.kind === 'unknown-attributes' ? v.message : assert.fail(), [0x7777, 0x0002], 'sw'));
  assert.equal(m.cls, StunClass.error);
  assert.equal(m.method, BINDING_METHOD);
  assert.deepEqual(m.transactionId, tid);
  assert.equal(m.fingerprint, 'valid');
  const code = attr(m, Attr.ERROR_CODE)!;
  assert.equal((code[2]! & 7) * 100 + code[3]!, 420);
  assert.equal(code.subarray(4).toString(), 'Unknown Attribute');
  assert.deepEqual(attr(m, Attr.UNKNOWN_ATTRIBUTES), hex('7777 0002'));
  // Comprehension-optional (>= 0x8000) unknowns are fine; CHANGE-REQUEST without flags is too.
  assert.equal(classifyRequest(withAttribute(base, 0x8123, Buffer.from('hello'))).kind, 'binding');
  assert.equal(classifyRequest(withAttribute(base, Attr.CHANGE_REQUEST, Buffer.alloc(4))).kind, 'binding');
  assert.equal(classifyRequest(withAttribute(base, Attr.CHANGE_REQUEST, hex('00000004'))).kind, 'unknown-attributes');
});

test('malformed messages are dropped with a reason', () => {
  const ok = encodeBindingRequest(randomBytes(12), { fingerprint: true });
  const cases: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['short header', ok.subarray(0, 19)],
    ['top bits set', Buffer.concat([hex('c001'), ok.subarray(2)])],
    ['length not multiple of 4', (() => { const b = Buffer.from(ok); b.writeUInt16BE(6, 2); return b; })()],
    ['length larger than datagram', (() => { const b = Buffer.from(ok); b.writeUInt16BE(12, 2); return b; })()],
    ['trailing bytes', Buffer.concat([ok, Buffer.alloc(4)])],
    ['attribute overruns', withAttribute(encodeBindingRequest(randomBytes(12)), 0x8022, Buffer.alloc(4), 40)],
    ['attribute after FINGERPRINT', withAttribute(ok, 0x8022, Buffer.from('late'))],
    ['FINGERPRINT in a cookie-less message', (() => { const b = Buffer.from(ok); b.writeUInt32BE(0x01020304, 4); return b; })()],
    ['indication', (() => { const b = Buffer.from(encodeBindingRequest(randomBytes(12))); b.writeUInt16BE(0x0011, 0); return b; })()],
    ['other method', (() => { const b = Buffer.from(encodeBindingRequest(randomBytes(12))); b.writeUInt16BE(0x0003, 0); return b; })()],
  ];
  for (const [name, bytes] of cases) {
    const v = classifyRequest(bytes);
    assert.equal(v.kind, 'drop', name);
    assert.ok(v.kind === 'drop' && v.reason.length > 0, name);
  }
});

test('addresses: parse, format (RFC 5952) and IPv4-mapped sources', () => {
  for (const a of ['0.0.0.0', '255.255.255.255', '::', '::1', '1::', '2001:db8::1', '1:2:3:4:5:6:7:8', '1:0:0:2::3', 'fe80::1:0:0:1']) {
    assert.equal(formatAddress(addressBytes(a)!), a, a);
  }
  assert.equal(formatAddress(addressBytes('2001:DB8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
  assert.equal(formatAddress(addressBytes('1:0:2:3:4:5:6:7')!), '1:0:2:3:4:5:6:7');
  assert.equal(addressBytes('example.com'), null);
  assert.equal(addressBytes('1.2.3'), null);
  assert.deepEqual(normalizeSource('::ffff:127.0.0.1', 9), { family: 4, address: '127.0.0.1', port: 9 });
  assert.deepEqual(normalizeSource('fe80::1%lo', 9), { family: 6, address: 'fe80::1', port: 9 });
  assert.equal(normalizeSource('nonsense', 9), null);
});

test('pure fuzz: 60 000 random and mutated datagrams never throw and never yield a bad verdict', () => {
  const rand = seededRandom(0x5eed);
  const seeds = [RFC5769_REQUEST, encodeBindingRequest(randomBytes(12)), encodeBindingRequest(randomBytes(12), { fingerprint: true, software: 'fz' })];
  let answered = 0;
  for (let i = 0; i < 60_000; i++) {
    const d = i % 3 === 0 ? randomBytes(Math.floor(rand() * 120)) : mutateDatagram(rand, seeds[i % seeds.length]!);
    const v = classifyRequest(d);
    if (v.kind !== 'drop') {
      answered++;
      // Whatever is accepted must encode a response that decodes again.
      const out = v.kind === 'binding'
        ? encodeBindingSuccess(v.message, { family: 6, address: '2001:db8::1', port: 1 }, 'fz')
        : encodeUnknownAttributes(v.message, v.unknown, 'fz');
      assert.ok(decodeStunMessage(out).ok);
    }
  }
  assert.ok(answered > 0, 'some mutations stay valid (the fuzz reaches the encoder)');
});
