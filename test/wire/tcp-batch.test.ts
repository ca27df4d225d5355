// Codecs of a batch on a TCP stream (PROTOCOL.md 5.1): WANT and FILE heads, their refusals, and a
// fuzz of both decoders. Also the GET_REQUEST form that asks for a batch.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decodeGetRequest, encodeGetRequest, GetStatus } from '../../src/wire/control';
import { MAX_RECORD_PLAINTEXT } from '../../src/wire/tcp';
import { decodeFileHead, decodeWant, encodeFileHead, encodeWant, FILE_HEAD_BYTES, WANT_HEAD_BYTES, wantEntryBytes } from '../../src/wire/tcp-batch';

const digest = 'cd'.repeat(32);

test('WANT round-trips: digests or none, non-ASCII names, the longest name; an empty WANT is "no more"', () => {
  const files = [
    { name: 'a.txt', sha256: digest },
    { name: 'fotos/ünï çödé.jpg', sha256: null },
    { name: 'x'.repeat(1024), sha256: digest },
  ];
  const b = encodeWant(files);
  assert.equal(b.length, WANT_HEAD_BYTES + files.reduce((n, f) => n + wantEntryBytes(f.name), 0));
  assert.deepEqual(decodeWant(b), files);
  assert.deepEqual(decodeWant(encodeWant([])), []);
  assert.equal(encodeWant([]).length, 2);
});

test('WANT refusals: short, a count past the entries, trailing bytes, an empty or over-long name, bad UTF-8', () => {
  const one = encodeWant([{ name: 'a', sha256: digest }]);
  assert.equal(decodeWant(Buffer.alloc(1)), null);
  const more = Buffer.from(one);
  more.writeUInt16BE(2, 0);
  assert.equal(decodeWant(more), null, 'count says 2, one entry follows');
  assert.equal(decodeWant(Buffer.concat([one, Buffer.from([0])])), null, 'a trailing byte');
  const empty = Buffer.alloc(WANT_HEAD_BYTES + 34);
  empty.writeUInt16BE(1, 0);
  assert.equal(decodeWant(empty), null, 'a name of 0 bytes');
  const long = encodeWant([{ name: 'y'.repeat(1024), sha256: null }]);
  long.writeUInt16BE(1025, WANT_HEAD_BYTES + 32);
  assert.equal(decodeWant(Buffer.concat([long, Buffer.from('y')])), null, 'a name of 1025 bytes');
  const bad = encodeWant([{ name: 'ab', sha256: null }]);
  bad[bad.length - 1] = 0xff;
  assert.equal(decodeWant(bad), null, 'not UTF-8');
});

test('as many entries as fit one record decode; the record limit holds them', () => {
  const files = Array.from({ length: 1400 }, (_, i) => ({ name: `d/f${i}.bin`, sha256: digest }));
  const b = encodeWant(files);
  assert.ok(b.length <= MAX_RECORD_PLAINTEXT, `${b.length} bytes fit one record`);
  assert.equal(decodeWant(b)?.length, 1400);
});

test('FILE head round-trips; a refusal carries no size, digest or bytes', () => {
  const ok = encodeFileHead({ status: GetStatus.ok, size: 2 ** 40 + 3, sha256: digest });
  assert.equal(ok.length, FILE_HEAD_BYTES);
  assert.deepEqual(decodeFileHead(ok), { status: 0, size: 2 ** 40 + 3, sha256: digest });
  assert.deepEqual(decodeFileHead(Buffer.concat([ok, Buffer.from('first bytes')])), { status: 0, size: 2 ** 40 + 3, sha256: digest }, 'bytes may follow an ok head');
  const refused = encodeFileHead({ status: GetStatus.notFound, size: 99, sha256: digest });
  assert.deepEqual(decodeFileHead(refused), { status: GetStatus.notFound, size: 0, sha256: '' });
  assert.equal(decodeFileHead(Buffer.concat([refused, Buffer.from('x')])), null, 'bytes after a refusal');
  const sized = Buffer.from(refused);
  sized.writeBigUInt64BE(5n, 1);
  assert.equal(decodeFileHead(sized), null, 'a refusal with a size');
  assert.equal(decodeFileHead(ok.subarray(0, 40)), null, 'short');
  const huge = Buffer.from(ok);
  huge.writeBigUInt64BE(2n ** 60n, 1);
  assert.equal(decodeFileHead(huge), null, 'a size past 2^53');
});

test('a batch GET names nothing: no name, offset, digest or payload; any of them makes it malformed', () => {
  const batch = { transport: 'batch' as const, sessionId: 7, offset: 0, expectedSha256: null, maxPayload: 0, name: '' };
  assert.deepEqual(decodeGetRequest(encodeGetRequest(batch)), batch);
  for (const bad of [{ name: 'a' }, { offset: 1 }, { expectedSha256: digest }, { maxPayload: 1200 }]) {
    assert.equal(decodeGetRequest(encodeGetRequest({ ...batch, ...bad })), null, JSON.stringify(bad));
  }
  assert.equal(decodeGetRequest(encodeGetRequest({ ...batch, transport: 'tcp' })), null, 'a single file must have a name');
});

test('fuzz: 100,000 random and mutated plaintexts never make a batch decoder throw', () => {
  const samples = [encodeWant([{ name: 'a/b.txt', sha256: digest }, { name: 'ü', sha256: null }]), encodeFileHead({ status: 0, size: 10, sha256: digest }), encodeFileHead({ status: 1, size: 0, sha256: '' })];
  let decoded = 0;
  for (let i = 0; i < 100_000; i++) {
    let buf: Buffer;
    if (i % 2 === 0) buf = randomBytes(i % 131);
    else {
      buf = Buffer.from(samples[i % samples.length]!);
      for (let k = 0; k < 1 + (i % 4); k++) buf[(i * 31 + k * 17) % buf.length] ^= 1 << (k + i) % 8;
      if (i % 5 === 0) buf = buf.subarray(0, i % buf.length);
    }
    if ((i % 4 < 2 ? decodeWant(buf) : decodeFileHead(buf)) !== null) decoded++;
  }
  // Some mutations (a flipped digest bit, a flipped byte of a name) still decode: the fuzz reached past the length checks.
  assert.ok(decoded > 0);
});
