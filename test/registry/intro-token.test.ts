// The introduction token (src/registry/intro-token.ts): bound to the address and the secret,
// good in its 10 s slot and the next one only.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { INTRO_SLOT_MS, INTRO_TOKEN_BYTES, checkIntroToken, issueIntroToken } from '../../src/registry/intro-token';

test('a token is good for its address, under its secret, in its slot and the next', () => {
  const secret = randomBytes(32);
  const from = { ip: '198.51.100.7', port: 40000 };
  const t0 = 1_700_000_003_000;
  const token = issueIntroToken(secret, from, t0);
  assert.equal(token.length, INTRO_TOKEN_BYTES);
  assert.equal(token.readUInt32BE(0), Math.floor(t0 / INTRO_SLOT_MS));
  assert.ok(checkIntroToken(secret, token, from, t0));
  assert.ok(checkIntroToken(secret, token, from, t0 + INTRO_SLOT_MS), 'the next slot');
  assert.ok(!checkIntroToken(secret, token, from, t0 + 2 * INTRO_SLOT_MS), 'two slots later');
  assert.ok(!checkIntroToken(secret, token, from, t0 - INTRO_SLOT_MS), 'a slot from the future');
  assert.ok(!checkIntroToken(secret, token, { ...from, port: 40001 }, t0), 'another port');
  assert.ok(!checkIntroToken(secret, token, { ...from, ip: '198.51.100.8' }, t0), 'another address');
  assert.ok(!checkIntroToken(randomBytes(32), token, from, t0), 'another secret');
  assert.ok(!checkIntroToken(secret, token.subarray(0, 19), from, t0), 'too short');
  const flipped = Buffer.from(token);
  flipped[19]! ^= 1;
  assert.ok(!checkIntroToken(secret, flipped, from, t0), 'altered');
  const moved = Buffer.from(token);
  moved.writeUInt32BE(token.readUInt32BE(0) + 1, 0);
  assert.ok(!checkIntroToken(secret, moved, from, t0 + INTRO_SLOT_MS), 'its slot changed');
});
