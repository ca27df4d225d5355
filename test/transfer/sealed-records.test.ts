// SealedRecords, the one way every TCP stream's records are opened (owner and requester, file and
// batch): numbered on from where the stream starts, read into one reused buffer, and the first
// damaged record ending it, with the records before it used and nothing after.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Opener, Sealer } from '../../src/crypto/transport';
import { joined, SealedRecords } from '../../src/transfer/sealed-records';
import { sealRecord } from '../../src/transfer/tcp-records';
import { seededRandom } from '../support/random';

const key = randomBytes(32);
const plaintexts = [1, 65_519, 300, 2, 65_000, 5].map((n) => randomBytes(n));
/** The records numbered from `first`; record `bad`'s last byte (its tag) flipped. */
function stream(first: number, bad = -1): Buffer {
  const sealer = new Sealer(key);
  return Buffer.concat(
    plaintexts.map((p, i) => {
      const r = sealRecord(sealer, first + i, p);
      if (i === bad) r[r.length - 1] ^= 1;
      return r;
    }),
  );
}

test('records open in order wherever the reads end, each read landing in the same buffer', () => {
  const bytes = stream(7);
  const random = seededRandom(3);
  const buffer = Buffer.alloc(70_000);
  const records = new SealedRecords(new Opener(key), 7);
  const got: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = Math.min(bytes.length - at, 1 + Math.floor(random() * 70_000));
    bytes.copy(buffer, 0, at, at + n);
    at += n;
    // Copied out, as a caller that keeps a plaintext past the next read must.
    assert.equal(records.push(buffer.subarray(0, n), (p) => got.push(Buffer.from(joined(p))) > 0), undefined);
    buffer.fill(0xee); // a reused buffer's old bytes are gone by the next read
  }
  assert.deepEqual(got, plaintexts);
  assert.equal(records.buffered, 0);
});

test('a record that does not authenticate: those before it used, none after; a wrong first number fails the first', () => {
  const got: Buffer[] = [];
  assert.equal(new SealedRecords(new Opener(key), 0).push(stream(0, 2), (p) => got.push(joined(p)) > 0), 'badAuth');
  assert.deepEqual(got, plaintexts.slice(0, 2));
  assert.equal(new SealedRecords(new Opener(key), 1).push(stream(0), () => assert.fail('nothing opens')), 'badAuth');
});

test('a length below 17 refuses the chunk before any record of it is used; `use` returning false stops at that record', () => {
  const short = Buffer.from([0, 16, ...randomBytes(16)]);
  assert.equal(new SealedRecords(new Opener(key), 0).push(Buffer.concat([stream(0), short]), () => assert.fail('nothing is used')), 'badLength');
  let used = 0;
  const records = new SealedRecords(new Opener(key), 0);
  assert.equal(records.push(stream(0), () => ++used < 2), undefined);
  assert.equal(used, 2);
});
