// The command line's own rules (README.md "Command reference"), through the built CLI: errors are one line,
// and nothing a user or a peer typed can put control characters on the terminal.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from './support/cli';

test('an error quoting input with an escape sequence and a newline prints one line without control characters', async () => {
  const res = await runCli(['peer', '--name', 'x\x1b[31mred\nsecond', '--no-interactive', '--registry', 'http://127.0.0.1:1']);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /^error: peer: invalid name 'x\?\[31mred\?second'/);
  assert.equal(res.stderr.split('\n').length, 2, 'one line and its newline');
  assert.doesNotMatch(res.stderr.slice(0, -1), /[\u0000-\u001f\u007f-\u009f]/);
});

test('a parseArgs mistake is reported in one line with exit 2', async () => {
  const res = await runCli(['serve-registry', '--stun-port', '-1']);
  assert.equal(res.code, 2);
  assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
  assert.match(res.stderr, /^error: serve-registry: /);
});

test('--version prints the version; an unknown command exits 2', async () => {
  const v = await runCli(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  const u = await runCli(['frobnicate']);
  assert.equal(u.code, 2);
  assert.equal(u.stderr.trim().split('\n').length, 1, u.stderr);
});
