// Pure codec tests and a fuzz of the control decoders: hostile bytes never throw.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  decodeGetRequest,
  decodeGetResponse,
  decodeListRequest,
  decodeListResponse,
  encodeGetRequest,
  encodeListRequest,
  encodeGetResponse,
  encodeListResponse,
  GetStatus,
  LIST_END,
  type ListEntry,
} from '../../src/wire/control';
import { decodeClearFrame, MAX_DATAGRAM_BYTES, SEALED_OVERHEAD } from '../../src/wire/frame';
import { isValidSharedName } from '../../src/wire/shared-file';
import { decodeTcpHello, decodeTcpReply } from '../../src/wire/tcp';

const digest = 'ab'.repeat(32);
/** A version-1 (clear) frame's room for a body. */
const MAX_BODY = MAX_DATAGRAM_BYTES - SEALED_OVERHEAD;

test('GET request round-trips, including a non-ASCII name and a resume offset', () => {
  const req = { transport: 'udp' as const, sessionId: 0xdeadbeef, offset: 2 ** 40 + 7, expectedSha256: digest, maxPayload: 1200, name: 'fotos/ünï çödé.jpg' };
  assert.deepEqual(decodeGetRequest(encodeGetRequest(req)), req);
  const anyDigest = { ...req, transport: 'tcp' as const, expectedSha256: null, maxPayload: 0 };
  assert.deepEqual(decodeGetRequest(encodeGetRequest(anyDigest)), anyDigest);
});

test('GET request: zero session, unknown transport, bad length and invalid UTF-8 are refused', () => {
  const good = encodeGetRequest({ transport: 'tcp', sessionId: 5, offset: 0, expectedSha256: null, maxPayload: 0, name: 'a' });
  const zeroSession = Buffer.from(good);
  zeroSession.writeUInt32BE(0, 1);
  assert.equal(decodeGetRequest(zeroSession), null);
  const badTransport = Buffer.from(good);
  badTransport[0] = 9;
  assert.equal(decodeGetRequest(badTransport), null);
  assert.equal(decodeGetRequest(good.subarray(0, good.length - 1)), null);
  assert.equal(decodeGetRequest(Buffer.concat([good, Buffer.from([0])])), null);
  const badUtf8 = Buffer.from(good);
  badUtf8[badUtf8.length - 1] = 0xff;
  assert.equal(decodeGetRequest(badUtf8), null);
});

test('GET response round-trips ok and refusals', () => {
  const ok = { status: GetStatus.ok, size: 123456789, sha256: digest };
  assert.deepEqual(decodeGetResponse(encodeGetResponse(ok)), ok);
  assert.deepEqual(decodeGetResponse(encodeGetResponse({ status: GetStatus.busy, size: 0, sha256: '' })), { status: GetStatus.busy, size: 0, sha256: '' });
  assert.equal(decodeGetResponse(Buffer.from([99])), null);
});

test('LIST pages: every entry comes back exactly once, each page fits one datagram', () => {
  const all: ListEntry[] = Array.from({ length: 200 }, (_, i) => ({
    name: `folder/file-${i}-${'x'.repeat(i % 50)}.txt`,
    size: i * 1000,
    sha256: digest,
    kind: i % 3 === 0 ? 'image' : 'text',
    width: i,
    height: i * 2,
  }));
  const seen: ListEntry[] = [];
  let start = 0;
  for (let pages = 0; pages < 100; pages++) {
    const body = encodeListResponse(all, start, MAX_BODY);
    assert.ok(SEALED_OVERHEAD + body.length <= MAX_DATAGRAM_BYTES, 'a page fits one sealed datagram');
    const res = decodeListResponse(body)!;
    assert.equal(res.total, 200);
    seen.push(...res.entries);
    if (res.nextIndex === LIST_END) break;
    start = res.nextIndex;
  }
  assert.deepEqual(seen, all);
  assert.deepEqual(decodeListRequest(Buffer.from([0, 0, 0, 7])), { start: 7, prefix: '', exact: false });
  assert.equal(decodeListRequest(Buffer.from([0, 0, 7])), null);
});

test('LIST pages fit the body room they are given: less room, fewer entries per page', () => {
  const all: ListEntry[] = Array.from({ length: 100 }, (_, i) => ({ name: `file-${i}-${'y'.repeat(30)}.txt`, size: i, sha256: digest, kind: 'text', width: 0, height: 0 }));
  const full = encodeListResponse(all, 0, MAX_BODY);
  const smaller = encodeListResponse(all, 0, MAX_BODY - 100);
  assert.ok(full.length <= MAX_BODY && smaller.length <= MAX_BODY - 100);
  assert.ok(decodeListResponse(smaller)!.entries.length < decodeListResponse(full)!.entries.length);
});

test('a LIST_RESPONSE whose name is not valid UTF-8 is refused as malformed', () => {
  const entry: ListEntry = { name: 'abc', size: 1, sha256: '00'.repeat(32), kind: 'other', width: 0, height: 0 };
  const body = encodeListResponse([entry], 0, MAX_BODY);
  assert.ok(decodeListResponse(body));
  const bad = Buffer.from(body);
  bad[bad.length - 2] = 0xc3; // a lead byte followed by 'c': an invalid sequence
  assert.equal(decodeListResponse(bad), null);
});

test('shared names: traversal, absolute paths, NUL and backslashes are not names', () => {
  for (const bad of ['', '../x', 'a/../b', '/etc/passwd', 'a\0b', 'a\\b', './a', 'a//b', 'a/']) assert.equal(isValidSharedName(bad), false, bad);
  for (const good of ['a', 'a.txt', 'folder/b.jpg', 'ünï çödé.txt', '..hidden-ish']) assert.equal(isValidSharedName(good), true, good);
});

test('fuzz: 200,000 random and mutated bodies never throw any decoder', () => {
  const samples = [
    encodeGetRequest({ transport: 'udp', sessionId: 9, offset: 10, expectedSha256: digest, maxPayload: 1200, name: 'x.jpg' }),
    encodeGetResponse({ status: GetStatus.ok, size: 10, sha256: digest }),
    encodeListResponse([{ name: 'a', size: 1, sha256: digest, kind: 'text' as const, width: 0, height: 0 }], 0, MAX_BODY),
    encodeListRequest(3, { prefix: 'pictures/2024/' }),
    encodeListRequest(0, { prefix: 'a.txt', exact: true }),
  ];
  const decoders = [decodeGetRequest, decodeGetResponse, decodeListResponse, decodeListRequest, decodeTcpHello, decodeTcpReply, decodeClearFrame];
  let decoded = 0;
  for (let i = 0; i < 200_000; i++) {
    let buf: Buffer;
    if (i % 2 === 0) {
      buf = randomBytes(i % 97);
    } else {
      buf = Buffer.from(samples[i % samples.length]!);
      const flips = 1 + (i % 4);
      for (let k = 0; k < flips; k++) buf[(i * 31 + k * 17) % buf.length] ^= 1 << (k + (i % 8)) % 8;
      if (i % 5 === 0) buf = buf.subarray(0, i % buf.length);
    }
    const decoder = decoders[i % decoders.length]!;
    if (decoder(buf) !== null) decoded++;
  }
  assert.ok(decoded >= 0);
});

test('LIST request: the 4-byte form stays valid; prefix and exact round-trip, non-ASCII included', () => {
  assert.equal(encodeListRequest(9).length, 4, 'no prefix, no flag: the form every owner understands');
  assert.deepEqual(decodeListRequest(encodeListRequest(9)), { start: 9, prefix: '', exact: false });
  for (const r of [
    { start: 0, prefix: 'pictures/2024/', exact: false },
    { start: 123_456, prefix: 'fotos/ünï çödé/', exact: false },
    { start: 0, prefix: 'fotos/ünï.jpg', exact: true },
    { start: 0xfffffffe, prefix: 'x'.repeat(1024), exact: false },
  ]) {
    assert.deepEqual(decodeListRequest(encodeListRequest(r.start, r)), r);
  }
});

test('LIST request: unknown flags, an exact request without a name, bad lengths and invalid UTF-8 are refused', () => {
  const good = encodeListRequest(1, { prefix: 'abc/' });
  const flag = Buffer.from(good);
  flag[4] = 0x02;
  assert.equal(decodeListRequest(flag), null, 'a flag this version does not know');
  assert.equal(decodeListRequest(Buffer.from([0, 0, 0, 0, 1, 0, 0])), null, 'exact with an empty name');
  assert.deepEqual(decodeListRequest(Buffer.from([0, 0, 0, 5, 0, 0, 0])), { start: 5, prefix: '', exact: false }, 'the long form with no prefix is valid');
  assert.equal(decodeListRequest(good.subarray(0, good.length - 1)), null, 'shorter than its prefix length');
  assert.equal(decodeListRequest(Buffer.concat([good, Buffer.from('x')])), null, 'longer than its prefix length');
  const long = Buffer.alloc(7 + 1025, 0x61);
  long.writeUInt32BE(0, 0);
  long[4] = 0;
  long.writeUInt16BE(1025, 5);
  assert.equal(decodeListRequest(long), null, 'a prefix longer than any shared name');
  const badUtf8 = Buffer.from(good);
  badUtf8[badUtf8.length - 1] = 0xff;
  assert.equal(decodeListRequest(badUtf8), null);
  for (const n of [0, 1, 2, 3, 5, 6]) assert.equal(decodeListRequest(Buffer.alloc(n)), null, `${n} bytes`);
});

test('LIST entries not hashed yet travel as 32 zero bytes and come back without a digest', () => {
  const entries: ListEntry[] = [
    { name: 'a/pending.jpg', size: 5, sha256: '', kind: 'image', width: 0, height: 0 },
    { name: 'a/hashed.txt', size: 6, sha256: digest, kind: 'text', width: 0, height: 0 },
  ];
  const body = encodeListResponse(entries, 0, MAX_BODY);
  assert.ok(body.subarray(11 + 9, 11 + 41).equals(Buffer.alloc(32)));
  assert.deepEqual(decodeListResponse(body)?.entries, entries);
});

test('LIST pages read only the entries they send from their source, however long it is', () => {
  let reads = 0;
  const source = {
    length: 1_000_000,
    at(i: number): ListEntry {
      reads++;
      return { name: `n/${i}`, size: i, sha256: digest, kind: 'other', width: 0, height: 0 };
    },
  };
  const res = decodeListResponse(encodeListResponse(source, 999_000, MAX_BODY))!;
  assert.equal(res.total, 1_000_000);
  assert.equal(res.nextIndex, 999_000 + res.entries.length);
  assert.ok(reads <= res.entries.length + 1, `${reads} entries read for a page of ${res.entries.length}`);
});

test('fuzz: the LIST decoders never throw on hostile bodies (structured mutations of every field)', () => {
  const requests = [encodeListRequest(0), encodeListRequest(7, { prefix: 'dir/ü/' }), encodeListRequest(0, { prefix: 'x.txt', exact: true })];
  const responses = [
    encodeListResponse(
      Array.from({ length: 12 }, (_, i) => ({ name: `d/${i}.jpg`, size: i, sha256: i % 2 ? digest : '', kind: 'image' as const, width: i, height: i })),
      0,
      MAX_BODY,
    ),
  ];
  let accepted = 0;
  for (let i = 0; i < 100_000; i++) {
    const sample = Buffer.from(i % 2 ? requests[i % requests.length]! : responses[0]!);
    let buf: Buffer = sample;
    switch (i % 4) {
      case 0: // overwrite a 16-bit field anywhere (counts, lengths) with an extreme
        if (buf.length >= 2) buf.writeUInt16BE([0, 1, 0xffff, 1024, 1025][i % 5]!, (i * 7) % (buf.length - 1));
        break;
      case 1: // truncate
        buf = buf.subarray(0, (i * 13) % (buf.length + 1));
        break;
      case 2: // append junk
        buf = Buffer.concat([buf, randomBytes(1 + (i % 9))]);
        break;
      default: // random bytes at random places
        for (let k = 0; k < 1 + (i % 6); k++) buf[(i * 31 + k * 101) % buf.length] = (i * k * 37) & 0xff;
    }
    for (const decode of [decodeListRequest, decodeListResponse] as const) {
      const out = decode(buf);
      if (out !== null) accepted++;
    }
  }
  assert.ok(accepted > 0, 'some mutations are still valid bodies (the fuzz reaches past the first check)');
});
