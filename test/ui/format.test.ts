import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, formatDuration, formatRate } from '../../src/ui/format';

test('formatBytes: bytes below 1 KiB, one decimal below 100 of a unit, none above', () => {
  const cases: [number, string][] = [
    [0, '0 B'],
    [1, '1 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [1.5 * 1024 * 1024, '1.5 MiB'],
    [99.94 * 1024, '99.9 KiB'],
    [99.96 * 1024, '100 KiB'],
    [256 * 1024 * 1024, '256 MiB'],
    [1024 * 1024 - 1, '1.0 MiB'], // would read "1024 KiB"
    [1023.6 * 1024, '1.0 MiB'],
    [5 * 1024 ** 3, '5.0 GiB'],
    [3 * 1024 ** 4, '3.0 TiB'],
    [2048 * 1024 ** 5, '2048 PiB'], // largest unit keeps growing
  ];
  for (const [n, want] of cases) assert.equal(formatBytes(n), want, String(n));
});

test('formatBytes and formatRate never throw or print nonsense on bad input', () => {
  for (const bad of [NaN, -1, -Infinity, Infinity]) {
    assert.equal(formatBytes(bad), '0 B');
    assert.equal(formatRate(bad), '0 B/s');
  }
  assert.equal(formatBytes(0.4), '0 B');
});

test('formatRate appends /s to the size', () => {
  assert.equal(formatRate(12.3 * 1024 * 1024), '12.3 MiB/s');
  assert.equal(formatRate(100), '100 B/s');
});

test('formatDuration: milliseconds below 0.1 s, tenths under a minute, then minutes and padded seconds, then hours', () => {
  const cases: [number, string][] = [
    [0, '0 ms'],
    [0.0174, '17 ms'],
    [0.0949, '95 ms'],
    [0.096, '0.1 s'],
    [0.4, '0.4 s'],
    [42, '42.0 s'],
    [59.94, '59.9 s'],
    [59.96, '1 m 00 s'],
    [65, '1 m 05 s'],
    [599.4, '9 m 59 s'],
    [3599.6, '1 h 00 m'], // rounds up into the next unit
    [3600, '1 h 00 m'],
    [7380, '2 h 03 m'],
    [-3, '0 ms'],
  ];
  for (const [s, want] of cases) assert.equal(formatDuration(s), want, String(s));
  assert.equal(formatDuration(NaN), '--');
  assert.equal(formatDuration(Infinity), '--');
});
