import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fetchSummaryLine } from '../../src/ui/result';

const base = { path: 'downloads/a.bin', size: 2 * 1024 * 1024, via: 'udp', seconds: 2 };

test('the result line says the route in words when the peer was not reached directly', () => {
  assert.equal(fetchSummaryLine(base), '✓ saved downloads/a.bin  2.0 MiB in 2.0 s (1.0 MiB/s over udp), SHA-256 verified');
  assert.equal(fetchSummaryLine({ ...base, route: 'direct' }), fetchSummaryLine(base));
  assert.match(fetchSummaryLine({ ...base, route: 'punched' }), /\(1\.0 MiB\/s over udp, punched through NAT\)/);
  assert.match(fetchSummaryLine({ ...base, route: 'relayed', resumedFrom: 1024 }), /over udp, relayed by the registry, resumed at 1\.0 KiB\)/);
});
