import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import jpeg from 'jpeg-js';
import { imageSize, imageSizeOfFile, MAX_HEADER_BYTES } from '../../src/media/image-info';
import { tempDir } from '../support/cli';

// Real files written by ImageMagick (`convert -size 37x23 gradient:red-blue ...`), all 37 x 23.
const FIXTURES = ['tiny.png', 'tiny.gif', 'tiny.bmp', 'tiny-v3.bmp', 'tiny-lossy.webp', 'tiny-lossless.webp', 'tiny-alpha.webp', 'progressive.jpg', 'cmyk.jpg'];
const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures', name));

function jpegOf(width: number, height: number): Buffer {
  return jpeg.encode({ data: Buffer.alloc(width * height * 4, 200), width, height }, 50).data;
}

/** An APPn segment of `bytes` payload bytes (at most 65533). */
function appSegment(marker: number, bytes: number): Buffer {
  const seg = Buffer.alloc(4 + bytes, 0x41);
  seg[0] = 0xff;
  seg[1] = marker;
  seg.writeUInt16BE(bytes + 2, 2);
  return seg;
}

test('dimensions of real PNG, GIF, BMP (v3 and v5) and WebP (lossy, lossless, extended) files', () => {
  for (const name of FIXTURES) assert.deepEqual(imageSize(fixture(name)), { width: 37, height: 23 }, name);
});

test('JPEG dimensions from the SOF marker, for sizes that exercise both bytes', () => {
  for (const [w, h] of [[1, 1], [4, 4], [255, 256], [640, 480], [1000, 3]]) {
    assert.deepEqual(imageSize(jpegOf(w, h)), { width: w, height: h });
  }
});

test('JPEG walk skips APPn, fill bytes and DHT, and does not mistake DHT/JPG/DAC for a frame', () => {
  const base = jpegOf(33, 17);
  // FF C4 (DHT), FF C8 (JPG) and FF CC (DAC) come before the SOF here, each with bogus "dimensions".
  const fake = (m: number) => Buffer.from([0xff, m, 0x00, 0x0b, 0x08, 0x7f, 0xff, 0x7f, 0xff, 0x03, 0x00, 0x00, 0x00]);
  const withFill = Buffer.concat([base.subarray(0, 2), Buffer.from([0xff, 0xff]), fake(0xc4), fake(0xc8), fake(0xcc), appSegment(0xe1, 300), base.subarray(2)]);
  assert.deepEqual(imageSize(withFill), { width: 33, height: 17 });
  // And every SOFn other than those three is read: patch the marker to C1, C2, ..., CF.
  const sofAt = base.indexOf(Buffer.from([0xff, 0xc0]));
  for (let m = 0xc0; m <= 0xcf; m++) {
    const patched = Buffer.from(base);
    patched[sofAt + 1] = m;
    const want = m === 0xc4 || m === 0xc8 || m === 0xcc ? null : { width: 33, height: 17 };
    if (m === 0xc4) continue; // patching the SOF into a DHT breaks the walk differently; covered above
    assert.deepEqual(imageSize(patched), want, m.toString(16));
  }
});

test('truncated headers and garbage give null, never an exception', () => {
  for (const name of [...FIXTURES, 'tiny.jpg']) {
    const full = name === 'tiny.jpg' ? jpegOf(37, 23) : fixture(name);
    const sizeEnd = name.endsWith('.png') ? 24 : name.endsWith('.gif') ? 10 : 0;
    for (let n = 0; n < Math.min(full.length, 400); n++) {
      const got = imageSize(full.subarray(0, n));
      if (got !== null) assert.deepEqual(got, { width: 37, height: 23 }, `${name} cut at ${n}`);
      if (n < sizeEnd) assert.equal(got, null, `${name} cut at ${n}`);
    }
  }
  for (let i = 0; i < 3000; i++) {
    const junk = randomBytes(1 + (i % 300));
    // Give every format's signature a chance to start the garbage.
    const sig = [[0xff, 0xd8], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], [...Buffer.from('GIF89a')], [0x42, 0x4d], [...Buffer.from('RIFF\0\0\0\0WEBPVP8 ')]][i % 6];
    if (sig) Buffer.from(sig).copy(junk);
    const got = imageSize(junk);
    if (got) assert.ok(got.width > 0 && got.height > 0);
  }
  assert.equal(imageSize(new Uint8Array(0)), null);
  assert.equal(imageSize(Buffer.from('just some text, not an image')), null);
  // Zero dimensions are "unknown", not 0 x 0.
  const png = Buffer.from(fixture('tiny.png'));
  png.writeUInt32BE(0, 16);
  assert.equal(imageSize(png), null);
});

test('imageSize reads a Uint8Array view at an offset into a larger buffer', () => {
  const big = Buffer.concat([Buffer.from('prefix'), fixture('tiny.gif')]);
  assert.deepEqual(imageSize(new Uint8Array(big.buffer, big.byteOffset + 6, big.length - 6)), { width: 37, height: 23 });
});

test('imageSizeOfFile: real files, a JPEG whose frame lies past 64 KiB of EXIF, missing and empty files', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    for (const name of FIXTURES) assert.deepEqual(await imageSizeOfFile(join(import.meta.dirname, '../fixtures', name)), { width: 37, height: 23 });
    const base = jpegOf(123, 45);
    const exif = Buffer.concat([appSegment(0xe1, 65000), appSegment(0xe2, 65000)]);
    const farFrame = Buffer.concat([base.subarray(0, 2), exif, base.subarray(2)]);
    assert.ok(farFrame.indexOf(Buffer.from([0xff, 0xc0])) > MAX_HEADER_BYTES);
    assert.equal(imageSize(farFrame.subarray(0, MAX_HEADER_BYTES)), null, 'not in the first 64 KiB');
    await writeFile(join(dir, 'far.jpg'), farFrame);
    assert.deepEqual(await imageSizeOfFile(join(dir, 'far.jpg')), { width: 123, height: 45 });
    await writeFile(join(dir, 'empty.jpg'), '');
    assert.equal(await imageSizeOfFile(join(dir, 'empty.jpg')), null);
    assert.equal(await imageSizeOfFile(join(dir, 'missing.jpg')), null);
    assert.equal(await imageSizeOfFile(dir), null, 'a folder');
    // A large JPEG-looking file of noise after the signature: null without reading it all.
    await writeFile(join(dir, 'noise.jpg'), Buffer.concat([Buffer.from([0xff, 0xd8]), appSegment(0xe0, 65533), randomBytes(200_000)]));
    assert.equal(await imageSizeOfFile(join(dir, 'noise.jpg')), null);
  } finally {
    await cleanup();
  }
});
