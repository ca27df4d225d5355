import assert from 'node:assert/strict';
import { test } from 'node:test';
import { userMessage } from '../../src/core/errors';
import { escapeUnsafe, safeJson } from '../../src/core/unsafe-text';
import { printable } from '../../src/ui/text';

test('controls and bidi controls are escaped, replaced for a terminal, and escaped in JSON; the rest is kept', () => {
  const name = 'a\x1b[31mb\nc\u009bd\u202ee\u2066f 写真 🎉';
  assert.equal(escapeUnsafe(name), 'a\\x1b[31mb\\x0ac\\x9bd\\u202ee\\u2066f 写真 🎉');
  assert.equal(printable(name), 'a?[31mb?c?d?e?f 写真 🎉');
  const json = safeJson({ name });
  assert.doesNotMatch(json, /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  assert.deepEqual(JSON.parse(json), { name }, 'the same value, only spelt with escapes');
});

test("JavaScript's own errors reach the user as one plain sentence; others as their message", () => {
  let caught: unknown;
  try {
    new Uint8Array(2 ** 53);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RangeError);
  assert.doesNotMatch(userMessage(caught), /typed array/i);
  assert.match(userMessage(caught), /internal error .*--debug/);
  assert.equal(userMessage(new Error('connection closed after 0 of 9 bytes')), 'connection closed after 0 of 9 bytes');
  assert.equal(userMessage('plain'), 'plain');
});
