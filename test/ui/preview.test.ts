import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import jpeg from 'jpeg-js';
import { MAX_PREVIEW_COLUMNS, previewMode, renderPreview, showPreview, to256 } from '../../src/ui/preview';
import { sampleJpeg, sampleText } from '../../src/ui/sample';
import { tempDir } from '../support/cli';
import { fakeTerminal, plain, withEnv } from './support';

type RGB = [number, number, number];
const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures', name));

/** Encodes a w x h image at quality 100 whose pixel (x, y) has colour at(x, y). */
function encode(w: number, h: number, at: (x: number, y: number) => RGB): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      data.set([...at(x, y), 255], (y * w + x) * 4);
    }
  }
  return jpeg.encode({ data, width: w, height: h }, 100).data;
}

function decoded(j: Buffer): { width: number; height: number; px: (x: number, y: number) => RGB } {
  const img = jpeg.decode(j, { useTArray: true, formatAsRGBA: true });
  return { width: img.width, height: img.height, px: (x, y) => [...img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 3)] as RGB };
}

/** Parses one drawn line into cells of [fg, bg?] colour components. */
function cells(line: string): number[][][] {
  assert.ok(line.endsWith('\x1b[0m'), 'every line ends with a reset');
  const out: number[][][] = [];
  for (const m of line.slice(0, -4).matchAll(/\x1b\[([0-9;]+)m▀/g)) {
    const nums = m[1]!.split(';').map(Number);
    const colours: number[][] = [];
    for (let i = 0; i < nums.length; ) {
      if (nums[i + 1] === 2) {
        colours.push(nums.slice(i + 2, i + 5));
        i += 5;
      } else {
        colours.push([nums[i + 2]!]);
        i += 3;
      }
    }
    out.push(colours);
  }
  assert.equal(plain(line), '▀'.repeat(out.length), 'nothing but half blocks and colours');
  return out;
}

const near = (got: number[], want: number[], tol: number, what: string) =>
  assert.ok(got.every((v, i) => Math.abs(v - want[i]!) <= tol), `${what}: got ${got}, want ${want} ±${tol}`);

// Four flat colours, one per pixel row pair and column pair: red | green over blue | white.
const QUADS: RGB[][] = [
  [[220, 30, 30], [30, 200, 40]],
  [[30, 40, 220], [250, 250, 250]],
];
const quad = (x: number, y: number): RGB => QUADS[y >> 1]![x >> 1]!;

test('a 4x4 image: exact cells (upper pixel = foreground, lower = background), 24-bit', () => {
  const j = encode(4, 4, quad);
  const img = decoded(j);
  const r = renderPreview(j, { maxColumns: 64, mode: 'truecolor' });
  assert.ok(r.ok);
  assert.deepEqual([r.width, r.height], [4, 4]);
  // No scaling (4 columns <= 64): the cells are the decoded pixels exactly.
  const want = [0, 1].map((row) =>
    [0, 1, 2, 3].map((x) => `\x1b[38;2;${img.px(x, 2 * row).join(';')};48;2;${img.px(x, 2 * row + 1).join(';')}m▀`).join('') + '\x1b[0m',
  );
  assert.deepEqual(r.lines, want);
  // And those colours are the ones encoded (quality 100, flat 2x2 blocks: small error only).
  const parsed = r.lines.map(cells);
  for (let row = 0; row < 2; row++) {
    for (let x = 0; x < 4; x++) {
      near(parsed[row]![x]![0]!, quad(x, 2 * row), 12, `fg ${x},${row}`);
      near(parsed[row]![x]![1]!, quad(x, 2 * row + 1), 12, `bg ${x},${row}`);
    }
  }
});

test('box downscale: 8x8 of four flat quadrants to 2 columns gives each quadrant mean', () => {
  const j = encode(8, 8, (x, y) => QUADS[y >> 2]![x >> 2]!);
  const img = decoded(j);
  const r = renderPreview(j, { maxColumns: 2, mode: 'truecolor' });
  assert.ok(r.ok);
  assert.deepEqual([r.width, r.height, r.lines.length], [8, 8, 1]);
  const mean = (x0: number, y0: number): number[] => {
    const sum = [0, 0, 0];
    for (let y = y0; y < y0 + 4; y++) for (let x = x0; x < x0 + 4; x++) img.px(x, y).forEach((v, i) => (sum[i] += v));
    return sum.map((v) => Math.round(v / 16));
  };
  assert.equal(r.lines[0], `\x1b[38;2;${mean(0, 0).join(';')};48;2;${mean(0, 4).join(';')}m▀\x1b[38;2;${mean(4, 0).join(';')};48;2;${mean(4, 4).join(';')}m▀\x1b[0m`);
  near(cells(r.lines[0]!)[1]![1]!, QUADS[1]![1]!, 12, 'white quadrant');
});

test('an odd number of pixel rows leaves the last row without a background', () => {
  const j = encode(2, 3, (_x, y) => (y === 2 ? [250, 250, 0] : [0, 0, 250]));
  const img = decoded(j);
  const r = renderPreview(j, { maxColumns: 10, mode: 'truecolor' });
  assert.ok(r.ok);
  assert.equal(r.lines.length, 2);
  assert.equal(r.lines[1], `\x1b[38;2;${img.px(0, 2).join(';')}m▀\x1b[38;2;${img.px(1, 2).join(';')}m▀\x1b[0m`);
});

test('width is capped at 64 columns and the aspect ratio kept (two pixel rows per line)', () => {
  const j = encode(200, 100, (x, y) => [x, y * 2, 128]);
  for (const [maxColumns, cols, lines] of [[500, 64, 16], [64, 64, 16], [40, 40, 10], [1, 1, 1], [0, 1, 1]]) {
    const r = renderPreview(j, { maxColumns: maxColumns!, mode: 'truecolor' });
    assert.ok(r.ok);
    assert.equal(r.lines.length, lines, `maxColumns ${maxColumns}`);
    for (const line of r.lines) assert.equal(plain(line).length, cols);
  }
  assert.equal(MAX_PREVIEW_COLUMNS, 64);
});

test('a tall picture is fitted to the line budget, keeping its shape', () => {
  const tall = encode(40, 400, (x, y) => [x * 6, y >> 1, 90]);
  const r = renderPreview(tall, { maxColumns: 64, mode: 'truecolor' });
  assert.ok(r.ok);
  assert.equal(r.lines.length, 32); // 64 pixel rows at most
  assert.equal(plain(r.lines[0]!).length, 6); // 40 x 400 -> 6 x 64 (6.4 rounded)
  const short = renderPreview(tall, { maxColumns: 64, maxRows: 5, mode: 'truecolor' });
  assert.ok(short.ok);
  assert.deepEqual([short.lines.length, plain(short.lines[0]!).length], [5, 1]);
  const wide = renderPreview(encode(400, 4, () => [10, 20, 30]), { maxColumns: 64, mode: 'truecolor' });
  assert.ok(wide.ok);
  assert.deepEqual([wide.lines.length, plain(wide.lines[0]!).length], [1, 64]);
});

test('256-colour mode: the nearest cube colour or grey', () => {
  assert.equal(to256(0, 0, 0), 16);
  assert.equal(to256(255, 255, 255), 231);
  assert.equal(to256(255, 0, 0), 196);
  assert.equal(to256(95, 135, 175), 67);
  assert.equal(to256(128, 128, 128), 244); // grey 128 exactly, closer than cube 135
  assert.equal(to256(238, 238, 238), 255);
  assert.equal(to256(100, 102, 98), 241); // grey 98..108 beats cube 95 for a near-grey
  assert.equal(to256(200, 30, 30), 160);
  const j = encode(4, 4, quad);
  const img = decoded(j);
  const r = renderPreview(j, { maxColumns: 64, mode: '256' });
  assert.ok(r.ok);
  const want = [0, 1].map((row) =>
    [0, 1, 2, 3].map((x) => `\x1b[38;5;${to256(...img.px(x, 2 * row))};48;5;${to256(...img.px(x, 2 * row + 1))}m▀`).join('') + '\x1b[0m',
  );
  assert.deepEqual(r.lines, want);
  // Red, green, blue and white quadrants land on those cube corners' neighbours.
  assert.deepEqual(cells(r.lines[0]!).map((c) => c[0]![0]), [160, 160, 40, 40]);
  assert.deepEqual(cells(r.lines[1]!).map((c) => c[1]![0]), [20, 20, 231, 231]);
});

test('progressive and Adobe CMYK JPEGs (ImageMagick fixtures) decode and preview: red on top, blue below', () => {
  for (const name of ['progressive.jpg', 'cmyk.jpg']) {
    const r = renderPreview(fixture(name), { maxColumns: 8, mode: 'truecolor' });
    assert.ok(r.ok, `${name}: ${r.ok ? '' : r.note}`);
    assert.deepEqual([r.width, r.height], [37, 23]);
    const top = cells(r.lines[0]!)[0]![0]!;
    const bottom = cells(r.lines.at(-1)!)[0]![0]!;
    assert.ok(top[0]! > 200 && top[2]! < 60, `${name} top ${top}`);
    assert.ok(bottom[2]! > 180 && bottom[0]! < 80, `${name} bottom ${bottom}`);
  }
});

test('truncated, corrupt and unsupported JPEGs give a one-line note, never an exception', () => {
  const notes = new Map<string, string>();
  const note = (what: string, bytes: Uint8Array) => {
    const r = renderPreview(bytes, { maxColumns: 64, mode: 'truecolor' });
    assert.equal(r.ok, false, `${what} should not preview`);
    if (r.ok) return '';
    assert.match(r.note, /^no preview: [^\n]+$/, what);
    notes.set(what, r.note);
    return r.note;
  };
  // Truncated anywhere: headers, first scan, last bytes; baseline, progressive and CMYK.
  for (const [name, full] of [['sample', sampleJpeg(96, 64)], ['progressive', fixture('progressive.jpg')], ['cmyk', fixture('cmyk.jpg')]] as const) {
    for (const cut of [0, 1, 2, 3, 20, 100, Math.floor(full.length / 2), full.length - 100, full.length - 2, full.length - 1]) {
      note(`${name} cut at ${cut}`, full.subarray(0, cut));
    }
  }
  const sample = sampleJpeg(96, 64);
  const scan = sample.indexOf(Buffer.from([0xff, 0xda]));
  assert.match(note('sample cut inside its scan', sample.subarray(0, scan + 200)), /^no preview: truncated JPEG \(end marker missing\)$/);
  assert.match(notes.get('sample cut at 20')!, /no frame header/);
  assert.match(note('progressive cut', fixture('progressive.jpg').subarray(0, 400)), /truncated JPEG/);
  // Non-Adobe CMYK: drop the APP14 "Adobe" segment from the fixture.
  const cmyk = fixture('cmyk.jpg');
  const adobe = cmyk.indexOf(Buffer.from('Adobe')) - 4;
  assert.equal(cmyk[adobe + 1], 0xee);
  const plainCmyk = Buffer.concat([cmyk.subarray(0, adobe), cmyk.subarray(adobe + 2 + cmyk.readUInt16BE(adobe + 2))]);
  assert.match(note('cmyk without Adobe', plainCmyk), /CMYK/);
  // Arithmetic, lossless and hierarchical coding: the SOF marker says so before any decoding.
  const base = encode(16, 16, (x, y) => QUADS[y >> 3]![x >> 3]!);
  const sofAt = base.indexOf(Buffer.from([0xff, 0xc0]));
  for (const [m, re] of [[0xc9, /arithmetic/], [0xc3, /lossless/], [0xc5, /hierarchical/]] as const) {
    const patched = Buffer.from(base);
    patched[sofAt + 1] = m;
    assert.match(note(`SOF ${m.toString(16)}`, patched), re);
  }
  // Too many pixels: refused from the header, without allocating anything.
  const huge = Buffer.from(base);
  huge.writeUInt16BE(60000, sofAt + 5);
  huge.writeUInt16BE(60000, sofAt + 7);
  assert.match(note('60000 x 60000', huge), /too large to preview \(60000 × 60000/);
  assert.match(note('PNG', fixture('tiny.png')), /not a JPEG/);
  assert.match(note('empty', new Uint8Array(0)), /not a JPEG/);
  // Corrupt scan data: bytes inside the entropy-coded segment overwritten with junk markers.
  const corrupt = Buffer.from(sampleJpeg(96, 64));
  const sos = corrupt.indexOf(Buffer.from([0xff, 0xda]));
  for (let i = sos + 20; i < sos + 60; i += 2) corrupt[i] = 0xff;
  const r = renderPreview(corrupt, { maxColumns: 64, mode: 'truecolor' });
  if (!r.ok) assert.match(r.note, /^no preview: [^\n]+$/); // tolerant decoding may still draw it
});

test('fuzz: mutated JPEGs never throw and never draw more than 64 columns', () => {
  const base = sampleJpeg(48, 32);
  for (let i = 0; i < 200; i++) {
    const m = Buffer.from(base);
    const flips = 1 + (i % 8);
    for (let k = 0; k < flips; k++) m[2 + ((randomBytes(4).readUInt32BE() % (m.length - 2)) >>> 0)] = randomBytes(1)[0]!;
    const r = renderPreview(m, { maxColumns: 64, mode: i % 2 ? '256' : 'truecolor' });
    if (r.ok) for (const line of r.lines) assert.ok(plain(line).length <= 64);
    else assert.match(r.note, /^no preview: [^\n]+$/);
  }
});

test('previewMode: truecolor from COLORTERM, else 256; null without a TTY, with NO_COLOR or TERM=dumb', () => {
  const tty = fakeTerminal({ columns: 80 });
  assert.equal(previewMode(tty, { COLORTERM: 'truecolor' }), 'truecolor');
  assert.equal(previewMode(tty, { COLORTERM: '24bit' }), 'truecolor');
  assert.equal(previewMode(tty, { COLORTERM: 'TrueColor' }), 'truecolor');
  assert.equal(previewMode(tty, {}), '256');
  assert.equal(previewMode(tty, { COLORTERM: 'yes', TERM: 'xterm-256color' }), '256');
  assert.equal(previewMode(tty, { COLORTERM: 'truecolor', NO_COLOR: '1' }), null);
  assert.equal(previewMode(tty, { COLORTERM: 'truecolor', NO_COLOR: '' }), null);
  assert.equal(previewMode(tty, { TERM: 'dumb' }), null);
  assert.equal(previewMode(fakeTerminal({ isTTY: false }), { COLORTERM: 'truecolor' }), null);
});

test('showPreview prints the picture and "W × H", a note for a bad file, nothing off a TTY', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await writeFile(join(dir, 'sample.jpg'), sampleJpeg());
    await writeFile(join(dir, 'cut.jpg'), sampleJpeg().subarray(0, 5000));
    await withEnv({ NO_COLOR: undefined, COLORTERM: 'truecolor', TERM: 'xterm-256color' }, async () => {
      const wide = fakeTerminal({ columns: 120 });
      await showPreview(join(dir, 'sample.jpg'), wide);
      const lines = wide.text.trimEnd().split('\n');
      assert.equal(plain(lines.at(-1)!), '640 × 480');
      assert.equal(lines.length, 24 + 1); // 64 columns x 48 pixel rows = 24 lines
      for (const l of lines.slice(0, -1)) assert.equal(plain(l), '▀'.repeat(64));
      assert.match(lines[0]!, /\x1b\[38;2;\d+;\d+;\d+;48;2;/);
      const short = fakeTerminal({ columns: 120 });
      (short as { rows?: number }).rows = 13;
      await showPreview(join(dir, 'sample.jpg'), short);
      assert.equal(short.text.trimEnd().split('\n').length, 10 + 1, 'fits a 13-row terminal');
      const narrow = fakeTerminal({ columns: 30 });
      await showPreview(join(dir, 'sample.jpg'), narrow);
      assert.equal(plain(narrow.text.split('\n')[0]!).length, 29);
      const cut = fakeTerminal({ columns: 80 });
      await showPreview(join(dir, 'cut.jpg'), cut);
      assert.match(plain(cut.text), /^no preview: truncated JPEG[^\n]*\n$/);
      const missing = fakeTerminal({ columns: 80 });
      await showPreview(join(dir, 'missing.jpg'), missing);
      assert.match(plain(missing.text), /^no preview: cannot read the file \(ENOENT\)\n$/);
      const pipe = fakeTerminal({ isTTY: false });
      await showPreview(join(dir, 'sample.jpg'), pipe);
      assert.equal(pipe.text, '');
    });
    await withEnv({ NO_COLOR: '1' }, async () => {
      const tty = fakeTerminal({ columns: 80 });
      await showPreview(join(dir, 'sample.jpg'), tty);
      assert.equal(tty.text, '');
    });
    await withEnv({ NO_COLOR: undefined, COLORTERM: undefined, TERM: 'xterm-256color' }, async () => {
      const tty = fakeTerminal({ columns: 80 });
      await showPreview(join(dir, 'sample.jpg'), tty);
      assert.match(tty.text, /^\x1b\[38;5;\d+;48;5;\d+m▀/);
      assert.doesNotMatch(tty.text, /38;2;/);
    });
  } finally {
    await cleanup();
  }
});

test('sample files: the JPEG decodes at the asked size and is colourful; the text is a few KiB of lines', () => {
  const img = decoded(sampleJpeg());
  assert.deepEqual([img.width, img.height], [640, 480]);
  const small = decoded(sampleJpeg(64, 48));
  assert.deepEqual([small.width, small.height], [64, 48]);
  const colours = new Set<string>();
  for (let y = 0; y < 480; y += 40) for (let x = 0; x < 640; x += 40) colours.add(img.px(x, y).map((v) => v >> 5).join());
  assert.ok(colours.size > 40, `only ${colours.size} distinct colours`);
  assert.deepEqual(sampleJpeg(64, 48), sampleJpeg(64, 48), 'deterministic');
  const text = sampleText();
  assert.ok(Buffer.byteLength(text) >= 2048 && Buffer.byteLength(text) <= 16384, `${Buffer.byteLength(text)} bytes`);
  assert.ok(text.split('\n').length > 40);
  assert.match(text, /^[\x20-\x7e\n]+$/, 'plain printable ASCII');
});
