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
  assert.equal(decodeListRequest(Buffer.from([0, 0, 0, 7])), 7);
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
    encodeListResponse([{ name: 'a', size: 1, sha256: digest, kind: 'text', width: 0, height: 0 }], 0, MAX_BODY),
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
