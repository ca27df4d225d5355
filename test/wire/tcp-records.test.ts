// RecordReader cuts a TCP byte stream into records wherever the reads happen to end.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { RecordReader, type StreamRecord } from '../../src/wire/tcp';
import { seededRandom } from '../support/random';

function record(sealedLength: number, fill: number): Buffer {
  const r = Buffer.alloc(2 + sealedLength, fill);
  r.writeUInt16BE(sealedLength, 0);
  return r;
}

const stream = Buffer.concat([record(17, 1), record(65535, 2), record(300, 3), record(65535, 4), record(18, 5)]);
const lengths = [17, 65535, 300, 65535, 18];

function readAll(chunks: Buffer[]): StreamRecord[] {
  const reader = new RecordReader();
  const out: StreamRecord[] = [];
  for (const c of chunks) {
    const got = reader.push(c);
    assert.notEqual(got, 'malformed');
    out.push(...(got as StreamRecord[]));
  }
  assert.equal(reader.buffered, 0);
  assert.equal(reader.pendingLength, null);
  return out;
}

function check(records: StreamRecord[]): void {
  assert.deepEqual(records.map((r) => Buffer.concat(r.sealed).length), lengths);
  records.forEach((r, i) => {
    assert.equal(r.header.readUInt16BE(0), lengths[i]);
    assert.ok(Buffer.concat(r.sealed).every((b) => b === i + 1), `record ${i} bytes`);
  });
}

test('records come out whole wherever the stream is cut: one chunk, every split in two, 1-byte reads, random reads', () => {
  check(readAll([stream]));
  for (const cut of [1, 2, 3, 18, 19, 20, 21, 100, 19 + 65537, 19 + 65537 + 1, stream.length - 1]) {
    check(readAll([stream.subarray(0, cut), stream.subarray(cut)]));
  }
  const small = Buffer.concat([record(17, 1), record(300, 2)]);
  const bytes = Array.from(small, (_, i) => small.subarray(i, i + 1));
  const got = readAll(bytes);
  assert.deepEqual(got.map((r) => Buffer.concat(r.sealed).length), [17, 300]);
  const random = seededRandom(7);
  for (let run = 0; run < 20; run++) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < stream.length; ) {
      const n = 1 + Math.floor(random() * 70_000);
      chunks.push(stream.subarray(at, at + n));
      at += n;
    }
    check(readAll(chunks));
  }
});

test('an unfinished record is held and says its length; a length below 17 is malformed, even split', () => {
  const reader = new RecordReader();
  assert.deepEqual(reader.push(stream.subarray(0, 19 + 1)), [{ header: stream.subarray(0, 2), sealed: [stream.subarray(2, 19)] }]);
  assert.equal(reader.buffered, 1);
  assert.equal(reader.pendingLength, null, 'one byte of a header is no length yet');
  assert.deepEqual(reader.push(stream.subarray(20, 30)), []);
  assert.equal(reader.pendingLength, 65535);
  assert.equal(reader.buffered, 11);
  assert.equal(new RecordReader().push(Buffer.from([0, 16, ...randomBytes(16)])), 'malformed');
  const split = new RecordReader();
  assert.deepEqual(split.push(Buffer.from([0])), []);
  assert.equal(split.push(Buffer.from([16])), 'malformed');
});

test('a record within one chunk is one view into it; one cut by reads is as many views, nothing copied', () => {
  const chunk = Buffer.from(stream);
  const [whole] = new RecordReader().push(chunk) as StreamRecord[];
  assert.equal(whole!.sealed.length, 1);
  assert.equal(whole!.sealed[0]!.buffer, chunk.buffer, 'a view, not a copy');
  const cut = new RecordReader();
  const a = Buffer.from(stream.subarray(0, 19 + 1000));
  const b = Buffer.from(stream.subarray(19 + 1000, 19 + 70_000));
  assert.equal((cut.push(a) as StreamRecord[]).length, 1);
  const [second] = cut.push(b) as StreamRecord[];
  assert.deepEqual(second!.sealed.map((p) => p.buffer), [a.buffer, b.buffer]);
  assert.deepEqual(second!.sealed.map((p) => p.length), [998, 65535 - 998]);
});

test('records keep their bytes after the reader moves on', () => {
  const reader = new RecordReader();
  const first = reader.push(stream.subarray(0, 100)) as StreamRecord[];
  const rest = reader.push(Buffer.from(stream.subarray(100))) as StreamRecord[];
  check([...first, ...rest]);
});

test('detach(): an unfinished record moves into the reader, so the chunk it came in may be overwritten', () => {
  const reader = new RecordReader();
  const reused = Buffer.alloc(50_000);
  const got: StreamRecord[] = [];
  for (let at = 0; at < stream.length; at += reused.length) {
    const n = stream.copy(reused, 0, at, at + reused.length);
    const out = reader.push(reused.subarray(0, n));
    assert.notEqual(out, 'malformed');
    // Used up before the next read, as a reader of one buffer must.
    for (const r of out as StreamRecord[]) got.push({ header: Buffer.from(r.header), sealed: [Buffer.concat(r.sealed)] });
    reader.detach();
    reused.fill(0xee); // the next read overwrites it
  }
  check(got);
  assert.equal(reader.buffered, 0);
});

test('detach() copies each byte once: a record trickled in one byte a read costs its size in copies, not its size squared', () => {
  const record = Buffer.alloc(2 + 65535, 9);
  record.writeUInt16BE(65535, 0);
  const reader = new RecordReader();
  const reused = Buffer.alloc(1);
  let copied = 0;
  const copy = Buffer.prototype.copy;
  // Counts what Buffer#copy moves while the reader runs (a hostile owner may trickle a record).
  Buffer.prototype.copy = function (this: Buffer, ...args: Parameters<Buffer['copy']>) {
    const n = copy.apply(this, args);
    copied += n;
    return n;
  };
  let done: StreamRecord[] = [];
  try {
    for (const byte of record) {
      reused[0] = byte;
      const out = reader.push(reused);
      assert.notEqual(out, 'malformed');
      if ((out as StreamRecord[]).length) done = out as StreamRecord[]; // the last byte: nothing is held after it
      reader.detach();
    }
  } finally {
    Buffer.prototype.copy = copy;
  }
  assert.equal(done.length, 1);
  assert.deepEqual(Buffer.concat(done[0]!.sealed), record.subarray(2));
  assert.ok(copied <= record.length, `${copied} bytes copied for a ${record.length}-byte record`);
});
