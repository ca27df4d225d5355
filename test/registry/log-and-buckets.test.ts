// Pure pieces of the limits: token buckets, the summing log, the file-descriptor limit and the
// connection cap sized from it.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { EventLog } from '../../src/registry/event-log';
import { connectionCapFor, readFileLimit } from '../../src/registry/fd-limit';
import { resolveLimits } from '../../src/registry/limits';
import { RateLimiter } from '../../src/registry/rate-limit';
import { tempDir } from '../support/cli';

test('token bucket: a burst of perMinute, then one per 60/perMinute s; clients apart; 0 = unlimited', () => {
  const b = new RateLimiter(6);
  const t = 1_000_000;
  for (let i = 0; i < 6; i++) assert.equal(b.take('a', t), 0);
  assert.equal(b.take('a', t), 10_000, 'the next token in 10 s');
  assert.equal(b.take('b', t), 0, 'another client has its own bucket');
  assert.equal(b.take('a', t + 9_000), 1_000);
  assert.equal(b.take('a', t + 10_000), 0);
  assert.equal(b.take('a', t + 10_000), 10_000);
  assert.equal(b.take('a', t + 10 * 60_000), 0, 'refilled, never past the burst');
  for (let i = 0; i < 5; i++) assert.equal(b.take('a', t + 10 * 60_000), 0);
  assert.ok(b.take('a', t + 10 * 60_000) > 0);
  b.forget(t + 20 * 60_000);
  assert.equal(b.size, 0, 'full buckets are forgotten');
  const unlimited = new RateLimiter(0);
  for (let i = 0; i < 1000; i++) assert.equal(unlimited.take('a'), 0);
});

test('token bucket: memory bounded, the least recently seen client forgotten first', () => {
  const b = new RateLimiter(1, 3);
  for (const c of ['a', 'b', 'c']) assert.equal(b.take(c, 0), 0);
  assert.ok(b.take('a', 0) > 0, 'a is empty, and now the most recent');
  assert.equal(b.take('d', 0), 0);
  assert.equal(b.size, 3);
  assert.equal(b.take('b', 0), 0, 'b was the oldest: forgotten, so it starts afresh');
  assert.ok(b.take('a', 0) > 0, 'a was kept');
});

test('log: the first event of a reason at once, the rest summed once per interval; counted; stacks only when debugging', async () => {
  const lines: string[] = [];
  const log = new EventLog((l) => lines.push(l), 200);
  for (let i = 0; i < 500; i++) log.note('header_timeout', `closed connection ${i}`);
  log.note('aborted', 'went away');
  assert.deepEqual(lines, [
    'registry: header_timeout: closed connection 0 (more of these are summed once per 0.2 s)',
    'registry: aborted: went away (more of these are summed once per 0.2 s)',
  ]);
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(lines.slice(2), ['registry: header_timeout: 499 more in the last 0.2 s']);
  assert.equal(log.counts.get('header_timeout'), 500);
  await new Promise((r) => setTimeout(r, 700));
  log.note('header_timeout', 'closed connection 500');
  assert.equal(lines.length, 4, 'a quiet interval closes the window: the next one is written at once');
  const err = new Error('boom\nsecond line');
  log.error('internal_error', err);
  assert.equal(lines.at(-1), 'registry: internal_error: boom (more of these are summed once per 0.2 s)');
  assert.ok(!lines.some((l) => l.includes('    at ')), 'no stack');
  log.close();

  const debugLines: string[] = [];
  const debug = new EventLog((l) => debugLines.push(l), 60_000, true);
  debug.error('internal_error', err);
  assert.equal(debugLines[0], 'registry: internal_error: boom (more of these are summed once per minute)');
  assert.match(debugLines[1]!, /^Error: boom\nsecond line\n\s+at /, 'the stack with --debug');
  debug.close();
});

test('fd limit: read from /proc/self/limits; the connection cap leaves room below it', async () => {
  const own = readFileLimit();
  assert.ok(own && own.soft > 0 && own.hard >= own.soft, JSON.stringify(own));
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'limits');
    writeFileSync(file, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n');
    assert.deepEqual(readFileLimit(file), { soft: 1024, hard: 524288 });
    writeFileSync(file, 'Max open files            unlimited            unlimited            files\n');
    assert.deepEqual(readFileLimit(file), { soft: Infinity, hard: Infinity });
    assert.equal(readFileLimit(join(dir, 'missing')), null);
  } finally {
    await cleanup();
  }
  assert.equal(connectionCapFor(1024), 896);
  assert.equal(connectionCapFor(65536), 58982);
  assert.equal(connectionCapFor(100), 16, 'never below 16');
  assert.ok(connectionCapFor(Infinity) < Infinity);
  const r = resolveLimits({ maxConnections: 10_000_000, maxNamesPerIp: 5 });
  assert.equal(r.limits.maxConnections, connectionCapFor(own.soft), 'an explicit cap above the fd limit is lowered');
  assert.equal(r.connectionsLowered, true);
  assert.equal(r.softFileLimit, own.soft);
  assert.equal(r.limits.maxNamesPerIp, 5);
  assert.equal(r.limits.registrationsPerMinute, 60);
  assert.equal(resolveLimits({ maxConnections: 100 }).connectionsLowered, false);
});
