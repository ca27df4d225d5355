// The names a download takes on disk: unusable names refused, every name made from a usable one
// within 255 bytes, and a real .part, lock and final name for the longest names a file may have.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { finish, openPart } from '../../src/transfer/download';
import { clipBytes, MAX_NAME_BYTES, numberedName, partBase, unusableName } from '../../src/transfer/local-names';
import { tempDir } from '../support/cli';
import { randomFile } from '../peer/support';

test('names with a control, a bidi control or a segment over 255 bytes are unusable; others are not', () => {
  for (const bad of ['a\x1bb', 'a\nb', 'a\rb', 'a\tb', 'a\x7fb', 'a\u0085b', 'a\u009bb', 'a\u202eb', 'a\u202ab', 'a\u2066b', 'a\u2069b', 'a\u200fb', 'a\u061cb', 'd\x1b/f.txt', `${'x'.repeat(256)}`, `d/${'é'.repeat(128)}`]) {
    assert.ok(unusableName(bad), JSON.stringify(bad));
  }
  for (const good of ['a.txt', 'folder/b.jpg', 'ünï çödé €.txt', '写真.jpg', '🎉.png', 'x'.repeat(255), `d/${'é'.repeat(127)}x`, 'a\u200bb']) {
    assert.equal(unusableName(good), undefined, JSON.stringify(good));
  }
  assert.match(unusableName('a\u202eb')!, /bidirectional control character \(\\u202e\)/);
  assert.match(unusableName('a\x1bb')!, /control character \(\\x1b\)/);
  assert.match(unusableName('x'.repeat(300))!, /300 bytes, more than the 255/);
});

test('clipBytes never cuts a character in two; numbered and .part names fit 255 bytes', () => {
  assert.equal(clipBytes('éé', 3), 'é');
  assert.equal(clipBytes('🎉🎉', 7), '🎉');
  assert.equal(clipBytes('abc', 10), 'abc');
  for (const base of ['x'.repeat(255), `${'é'.repeat(125)}.txt`, `${'写'.repeat(83)}.md`, `a.${'e'.repeat(250)}`, '🎉'.repeat(63)]) {
    for (const n of [0, 1, 42, 9999]) {
      const name = numberedName(base, n);
      assert.ok(Buffer.byteLength(name) <= MAX_NAME_BYTES, `${n}: ${Buffer.byteLength(name)} bytes`);
      if (n > 0) assert.ok(name.includes(` (${n})`), name);
      assert.doesNotMatch(name, /\uFFFD/);
    }
    assert.ok(Buffer.byteLength(`${partBase(base)}.${'a'.repeat(12)}.${'b'.repeat(8)}.part.unordered`) <= MAX_NAME_BYTES);
  }
  assert.equal(numberedName('notes.txt', 0), 'notes.txt');
  assert.equal(numberedName('notes.txt', 2), 'notes (2).txt');
});

test('a file whose name is 255 bytes gets its .part, lock and final names without ENAMETOOLONG, twice', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const name = `${'é'.repeat(125)}.txt`; // 254 bytes: usable
    assert.equal(unusableName(name), undefined);
    for (let round = 0; round < 2; round++) {
      const part = await openPart(join(dir, 'dl'), name, 1000, 'ab'.repeat(32));
      await part.markUnordered();
      await randomFile(part.path, 1000);
      const saved = await finish(part.path, join(dir, 'dl'), name);
      assert.equal(await part.release(), false, 'the .part became the file');
      assert.ok(Buffer.byteLength(saved.slice(saved.lastIndexOf('/') + 1)) <= MAX_NAME_BYTES);
    }
    const names = await readdir(join(dir, 'dl'));
    assert.equal(names.length, 2, names.join(', '));
    assert.ok(names.includes(name));
    assert.ok(names.some((n) => n.endsWith(' (1).txt')));
  } finally {
    await cleanup();
  }
});
