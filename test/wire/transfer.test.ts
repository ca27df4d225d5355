// UDP transfer packet codecs: exact layouts, round trips, refusals, and a fuzz proving the
// decoders (frame + body) never throw on random or mutated datagrams.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decodeClearFrame, encodeClearFrame, FrameType, LOCAL_MAX_DATAGRAM_BYTES, MAX_DATAGRAM_BYTES, SEALED_OVERHEAD } from '../../src/wire/frame';
import {
  ACK_FIXED_BYTES,
  DATA_HEADER_BYTES,
  MAX_ACK_RANGES,
  LOCAL_MAX_PAYLOAD_BYTES,
  MAX_PAYLOAD_BYTES,
  decodeAbort,
  decodeAck,
  decodeData,
  decodeDone,
  encodeAbort,
  encodeAck,
  encodeData,
  encodeDataHeader,
  encodeDone,
} from '../../src/wire/transfer';
import { chunkBytesFor, DEFAULT_MAX_PAYLOAD } from '../../src/transfer/udp/index';
import { seededRandom } from '../support/random';

test('DATA layout: u32 packet number, u32 chunk, u32 send time, then the payload', () => {
  const body = encodeData({ packetNumber: 0x01020304, chunk: 0x0a0b0c0d, sendTimeUs: 0xfffffffe }, Buffer.from('hi'));
  assert.deepEqual([...body], [1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 0xff, 0xff, 0xff, 0xfe, 0x68, 0x69]);
  const p = decodeData(body)!;
  assert.equal(p.packetNumber, 0x01020304);
  assert.equal(p.chunk, 0x0a0b0c0d);
  assert.equal(p.sendTimeUs, 0xfffffffe);
  assert.equal(p.payload.toString(), 'hi');
});

test('a frame body given as parts (a DATA header and its payload) is byte for byte the frame around the whole body', () => {
  for (const len of [1, 2, 1199, 1200, MAX_PAYLOAD_BYTES]) {
    const p = { packetNumber: 0xfedcba98, chunk: len * 7, sendTimeUs: 0x80000001 };
    const payload = randomBytes(len);
    assert.deepEqual(encodeClearFrame(FrameType.data, 0xdeadbeef, [encodeDataHeader(p), payload]), encodeClearFrame(FrameType.data, 0xdeadbeef, encodeData(p, payload)));
  }
});

test('DATA limits: an empty payload and one past the datagram limit are refused; the largest fits one datagram', () => {
  assert.equal(decodeData(Buffer.alloc(DATA_HEADER_BYTES)), null);
  assert.equal(decodeData(Buffer.alloc(DATA_HEADER_BYTES - 1)), null);
  // A network path's DATA holds at most 1423 bytes; between two endpoints of one host, 16,335.
  assert.ok(decodeData(Buffer.alloc(DATA_HEADER_BYTES + MAX_PAYLOAD_BYTES + 1)));
  assert.ok(decodeData(Buffer.alloc(DATA_HEADER_BYTES + LOCAL_MAX_PAYLOAD_BYTES)));
  assert.equal(decodeData(Buffer.alloc(DATA_HEADER_BYTES + LOCAL_MAX_PAYLOAD_BYTES + 1)), null);
  assert.equal(SEALED_OVERHEAD + DATA_HEADER_BYTES + LOCAL_MAX_PAYLOAD_BYTES, LOCAL_MAX_DATAGRAM_BYTES);
  // Sealed: header and counter, the message's type and id, the DATA header, the payload, the tag.
  assert.equal(SEALED_OVERHEAD + encodeData({ packetNumber: 0, chunk: 0, sendTimeUs: 0 }, Buffer.alloc(MAX_PAYLOAD_BYTES)).length, MAX_DATAGRAM_BYTES);
  assert.equal(MAX_PAYLOAD_BYTES, 1423);
  assert.ok(DEFAULT_MAX_PAYLOAD <= 1200);
});

test('chunk size from max payload: below 64 refused, above 1423 clamped (on a sealed connection)', () => {
  const body = MAX_DATAGRAM_BYTES - SEALED_OVERHEAD;
  assert.equal(chunkBytesFor(0, body), null);
  assert.equal(chunkBytesFor(63, body), null);
  assert.equal(chunkBytesFor(64, body), 64);
  assert.equal(chunkBytesFor(1200, body), 1200);
  assert.equal(chunkBytesFor(65535, body), 1423);
  // A connection with more overhead per datagram (a relay's header) has less room: the chunk shrinks with it.
  assert.equal(chunkBytesFor(65535, body - 20), 1403);
});

test('ACK layout and round trip', () => {
  const a = { echoTimeUs: 0x11223344, ackDelayUs: 250, window: 4096, cumulativeChunk: 9, ranges: [{ first: 20, last: 30 }, { first: 10, last: 18 }, { first: 5, last: 5 }] };
  const body = encodeAck(a);
  assert.equal(body.length, ACK_FIXED_BYTES + 3 * 8);
  assert.deepEqual([...body.subarray(0, 17)], [0x11, 0x22, 0x33, 0x44, 0, 0, 0, 250, 0, 0, 0x10, 0, 0, 0, 0, 9, 3]);
  assert.deepEqual([...body.subarray(17, 25)], [0, 0, 0, 20, 0, 0, 0, 30]);
  assert.deepEqual(decodeAck(body), a);
});

test('ACK refusals: no ranges, first > last, overlapping, touching or ascending ranges, wrong length', () => {
  const ok = { echoTimeUs: 0, ackDelayUs: 0, window: 1, cumulativeChunk: 0 };
  assert.equal(decodeAck(encodeAck({ ...ok, ranges: [] })), null);
  assert.equal(decodeAck(encodeAck({ ...ok, ranges: [{ first: 5, last: 4 }] })), null);
  assert.equal(decodeAck(encodeAck({ ...ok, ranges: [{ first: 5, last: 9 }, { first: 3, last: 5 }] })), null);
  assert.equal(decodeAck(encodeAck({ ...ok, ranges: [{ first: 5, last: 9 }, { first: 3, last: 4 }] })), null, 'touching ranges must be one range');
  assert.equal(decodeAck(encodeAck({ ...ok, ranges: [{ first: 1, last: 2 }, { first: 5, last: 9 }] })), null);
  assert.equal(decodeAck(encodeAck({ ...ok, ranges: [{ first: 0, last: 0 }, { first: 0, last: 0 }] })), null);
  const good = encodeAck({ ...ok, ranges: [{ first: 5, last: 9 }] });
  assert.ok(decodeAck(good));
  assert.equal(decodeAck(good.subarray(0, good.length - 1)), null);
  assert.equal(decodeAck(Buffer.concat([good, Buffer.alloc(1)])), null);
  const many = Array.from({ length: MAX_ACK_RANGES + 10 }, (_, i) => ({ first: 10_000 - 3 * i, last: 10_000 - 3 * i + 1 }));
  const capped = decodeAck(encodeAck({ ...ok, ranges: many }))!;
  assert.equal(capped.ranges.length, MAX_ACK_RANGES, 'the encoder keeps the highest ranges');
  assert.equal(capped.ranges[0].last, 10_001);
});

test('DONE and ABORT', () => {
  assert.equal(decodeDone(encodeDone()), true);
  assert.equal(decodeDone(Buffer.alloc(1)), null);
  assert.equal(decodeAbort(encodeAbort(3)), 3);
  assert.equal(decodeAbort(Buffer.alloc(0)), null);
  assert.equal(decodeAbort(Buffer.alloc(2)), null);
});

function decodeAll(datagram: Buffer): void {
  const f = decodeClearFrame(datagram);
  if (typeof f === 'string') return;
  decodeData(f.body);
  decodeAck(f.body);
  decodeDone(f.body);
  decodeAbort(f.body);
}

test('fuzz: 20k random and 20k mutated datagrams never make a decoder throw', () => {
  const rnd = seededRandom(4242);
  const int = (n: number) => Math.floor(rnd() * n);
  let decodedBodies = 0;
  for (let i = 0; i < 20_000; i++) {
    const raw = randomBytes(int(1600));
    decodeAll(raw);
    // Random bodies inside a valid frame reach the body decoders.
    const type = 0x10 + int(4);
    const framed = encodeClearFrame(type, int(0xffffffff), randomBytes(int(MAX_DATAGRAM_BYTES - 12 + 1)));
    const f = decodeClearFrame(framed);
    assert.ok(typeof f !== 'string');
    decodeData(f.body);
    decodeAck(f.body);
    decodeDone(f.body);
    decodeAbort(f.body);
    decodedBodies++;
  }
  const seeds = [
    encodeClearFrame(FrameType.data, 1, encodeData({ packetNumber: 5, chunk: 7, sendTimeUs: 9 }, randomBytes(1200))),
    encodeClearFrame(FrameType.ack, 1, encodeAck({ echoTimeUs: 1, ackDelayUs: 2, window: 3, cumulativeChunk: 4, ranges: [{ first: 90, last: 99 }, { first: 50, last: 60 }, { first: 1, last: 2 }] })),
    encodeClearFrame(FrameType.done, 1, encodeDone()),
    encodeClearFrame(FrameType.abort, 1, encodeAbort(1)),
  ];
  let acceptedMutants = 0;
  for (let i = 0; i < 20_000; i++) {
    const m = Buffer.from(seeds[i % seeds.length]);
    const body = m.subarray(8, m.length - 4);
    for (let k = 1 + int(4); k > 0 && body.length > 0; k--) body[int(body.length)] ^= 1 << int(8);
    // Re-seal so the mutation reaches the body decoders instead of dying at the checksum.
    const resealed = encodeClearFrame(m[3], m.readUInt32BE(4), int(4) === 0 ? body.subarray(0, int(body.length + 1)) : body);
    decodeAll(resealed);
    decodeAll(m); // unsealed: the checksum must catch it
    const f = decodeClearFrame(m);
    if (typeof f !== 'string' && !m.equals(seeds[i % seeds.length])) acceptedMutants++;
  }
  assert.equal(decodedBodies, 20_000);
  assert.equal(acceptedMutants, 0, 'CRC-32 let a mutated datagram through');
});
