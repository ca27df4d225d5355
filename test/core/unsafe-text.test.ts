import assert from 'node:assert/strict';
import { test } from 'node:test';
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
