import assert from 'node:assert/strict';
import { test } from 'node:test';
import { displayWidth, padToWidth, printable, truncateToWidth } from '../../src/ui/text';

test('printable replaces C0, DEL and C1 controls and keeps everything else', () => {
  assert.equal(printable('a\x1b[31mb\x07c\nd\re\x7ff\x9bg'), 'a?[31mb?c?d?e?f?g');
  assert.equal(printable('photo ñ 写真 🎉.jpg'), 'photo ñ 写真 🎉.jpg');
  assert.equal(printable(''), '');
});

test('displayWidth counts wide characters as two columns and combining marks as none', () => {
  assert.equal(displayWidth('abc'), 3);
  assert.equal(displayWidth('写真.jpg'), 8);
  assert.equal(displayWidth('한국'), 4);
  assert.equal(displayWidth('🎉x'), 3);
  assert.equal(displayWidth('e\u0301'), 1); // e + combining acute
  assert.equal(displayWidth('фото'), 4);
});

test('truncateToWidth never exceeds the width and marks the cut', () => {
  assert.equal(truncateToWidth('abcdef', 6), 'abcdef');
  assert.equal(truncateToWidth('abcdef', 4), 'abc…');
  assert.equal(truncateToWidth('写真写真', 5), '写真…');
  assert.equal(truncateToWidth('写真写真', 4), '写…');
  assert.equal(truncateToWidth('abc', 0), '');
  assert.equal(truncateToWidth('abc', 1), '…');
  for (let w = 0; w < 20; w++) assert.ok(displayWidth(truncateToWidth('東京の写真とビデオ🎉abc', w)) <= w);
  assert.equal(padToWidth('写', 4), '写  ');
  assert.equal(padToWidth('long', 2), 'long');
});
