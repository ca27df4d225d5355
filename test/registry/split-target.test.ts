// splitTarget reads a request target's path and query as URL parsing does, without it for plain paths.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitTarget } from '../../src/registry/http';

test('splitTarget gives the path and query URL parsing gives, for plain and odd targets alike', () => {
  const targets = [
    '/v1/peers', '/v1/peers?limit=5&cursor=abc', '/v1/peers/alice', '/v1/peers/Al.ice-_1/heartbeat', '/healthz?', '/metrics?x=1?y=2',
    '/v1/peers/%41lice', '/v1/peers/%2e%2e/healthz', '/v1/peers/../healthz', '/v1/./peers', '/v1/peers/.hidden', '//v1/peers',
    '/v1\\peers', 'http://elsewhere.example/v1/peers?limit=1', '/v1/peers#frag', '/v1/peers/a b', '/',
  ];
  for (const t of targets) {
    const url = new URL(t, 'http://registry.invalid');
    const got = splitTarget(t);
    assert.equal(got.path, url.pathname, t);
    assert.deepEqual([...new URLSearchParams(got.query)], [...url.searchParams], t);
  }
});
