// Pure checks: names, addresses, list parameters, cursors, bearer tokens.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLoopback, normalizeIp } from '../../src/core/addresses';
import { isValidName, nameKey } from '../../src/registry/names';
import { matchRoute } from '../../src/registry/server';
import { bearerToken, checkListParams, checkRegistration, decodeCursor, encodeCursor } from '../../src/registry/validate';

test('names: 1-32 of letters, digits, . _ -; keyed case-insensitively', () => {
  for (const ok of ['a', 'Alice', 'a.b_c-d', '0', 'x'.repeat(32)]) assert.ok(isValidName(ok), ok);
  for (const bad of ['', 'x'.repeat(33), 'a b', 'é', 'a/b', 'a%2f', null, 5]) assert.ok(!isValidName(bad), String(bad));
  assert.equal(nameKey('AlIce'), 'alice');
});

test('addresses: ::ffff: stripped, loopback recognised', () => {
  assert.equal(normalizeIp('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(normalizeIp('fe80::1'), 'fe80::1');
  for (const l of ['127.0.0.1', '127.0.1.1', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(l), l);
  for (const n of ['10.0.0.1', 'fe80::1', '128.0.0.1']) assert.ok(!isLoopback(n), n);
});

test('addresses: every spelling of loopback and of the unspecified address is recognised', () => {
  for (const l of ['::ffff:7f00:1', '::ffff:7f00:101', '0:0::1', '::0:1', '0:0:0:0:0:0:0:1', '::FFFF:127.0.0.1']) assert.ok(isLoopback(l), l);
  for (const n of ['::2', '::ffff:a00:1', '::ffff:8000:1', '1::1']) assert.ok(!isLoopback(n), n);
  // Mapped IPv4 in any spelling comes out dotted, so peers on udp4 sockets can use it.
  assert.equal(normalizeIp('::ffff:a00:1'), '10.0.0.1');
  assert.equal(normalizeIp('::FFFF:10.0.0.1'), '10.0.0.1');
  assert.equal(normalizeIp('2001:DB8:0:0::1'), '2001:db8::1');
  for (const claim of ['::ffff:7f00:1', '::0:1', '0:0:0:0:0:0:0:1', '::ffff:7f00:101', '::ffff:0:0', '0::0']) {
    const r = checkRegistration({ name: 'p', port: 1, ip: claim, addresses: [claim] }, '203.0.113.9');
    assert.deepEqual(r, { ok: true, value: { name: 'p', port: 1, ip: '203.0.113.9', addresses: ['203.0.113.9'] } }, claim);
  }
});

test('registration: loopback and unspecified claims replaced only for non-loopback clients', () => {
  const remote = checkRegistration({ name: 'p', port: 1, ip: '127.0.1.1', addresses: ['127.0.0.1', '0.0.0.0', '10.0.0.2'] }, '203.0.113.9');
  assert.deepEqual(remote, { ok: true, value: { name: 'p', port: 1, ip: '203.0.113.9', addresses: ['203.0.113.9', '10.0.0.2'] } });
  const local = checkRegistration({ name: 'p', port: 1, ip: '127.0.1.1' }, '127.0.0.1');
  assert.equal(local.ok && local.value.ip, '127.0.1.1');
  const dflt = checkRegistration({ name: 'p', port: 1 }, '198.51.100.4');
  assert.equal(dflt.ok && dflt.value.ip, '198.51.100.4');
  assert.equal(checkRegistration({ name: 'p', port: 1, ip: '::ffff:10.0.0.1' }, '1.2.3.4').ok, true);
});

test('list parameters and cursors', () => {
  const p = checkListParams(new URLSearchParams('prefix=AB'));
  assert.deepEqual(p, { ok: true, value: { limit: 100, prefix: 'ab', after: null } });
  assert.equal(checkListParams(new URLSearchParams('limit=1000')).ok, true);
  for (const q of ['limit=0', 'limit=1001', 'limit=', 'limit=01x', 'prefix=a*', 'cursor=%%%']) {
    assert.equal(checkListParams(new URLSearchParams(q)).ok, false, q);
  }
  const c = encodeCursor('bob');
  assert.equal(decodeCursor(c), 'bob');
  assert.equal(decodeCursor(Buffer.from('c1:Bob').toString('base64url')), null, 'keys are lower case');
  assert.equal(decodeCursor('bob'), null);
  // A cluster's cursors carry the shard; the key part is checked all the same.
  assert.equal(decodeCursor(encodeCursor('63:' + 'b'.repeat(32))), '63:' + 'b'.repeat(32));
  assert.equal(decodeCursor(encodeCursor('7:')), '7:');
  for (const bad of ['7:Bob', '7:a b', '12345:bob', ':bob', '7:bob:x']) assert.equal(decodeCursor(encodeCursor(bad)), null, bad);
});

test('bearer tokens and routes', () => {
  assert.equal(bearerToken('Bearer abc_DEF-123'), 'abc_DEF-123');
  assert.equal(bearerToken('bearer  xyz'), 'xyz');
  for (const h of [undefined, '', 'Basic abc', 'Bearer', 'Bearer a b', 'Bearer ' + 'a'.repeat(129)]) assert.equal(bearerToken(h), null, String(h));
  assert.equal(matchRoute('/v1/peers/Al%69ce')?.params.name, 'Alice');
  assert.equal(matchRoute('/v1/peers/x/heartbeat')?.label, '/v1/peers/{name}/heartbeat');
  assert.equal(matchRoute('/v1/peers/%E0%A4%A'), null);
  assert.equal(matchRoute('/v1/peer'), null);
});
