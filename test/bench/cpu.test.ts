// The benches' /proc readers (bench/cpu.ts): the time a process waited for a CPU, which the
// registry load bench reports beside the CPU it used.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { test } from 'node:test';
import { procCpu, runQueueWait } from '../../bench/cpu';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('runQueueWait: more busy processes than cores wait for a CPU, and it says how long', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  assert.equal(runQueueWait(2 ** 22 + 12345), undefined, 'no such process');
  // Two more spinning processes than cores: together they must wait about 2 x the spin.
  const spinMs = 1500;
  const kids = Array.from({ length: cpus().length + 2 }, () =>
    spawn(process.execPath, ['-e', `const t = Date.now(); while (Date.now() - t < ${spinMs});`], { stdio: 'ignore' }),
  );
  try {
    await sleep(spinMs - 300);
    const waited = kids.reduce((s, k) => s + (runQueueWait(k.pid!) ?? NaN), 0);
    const ran = kids.reduce((s, k) => s + (procCpu(k.pid!)?.self ?? NaN), 0);
    assert.ok(waited > 0.5, `the processes waited ${waited.toFixed(3)} s for a CPU in all (ran ${ran.toFixed(2)} s)`);
  } finally {
    for (const k of kids) k.kill('SIGKILL');
  }
});
