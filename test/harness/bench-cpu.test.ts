// The readers behind the "where the CPU goes" bench rows (bench/cpu.ts): /proc CPU times of a
// process and of its reaped children, the time a process waited for a CPU (the registry load
// bench reports it beside the CPU used), a V8 profile's top self time, and the UDP sender's
// P2PSHARE_UDP_DEBUG lines (a format the bench parses: if the sender's line changes, the rows
// would silently say nothing, so a real transfer's lines are parsed here).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { modelStats, procCpu, runQueueWait, summariseProfile } from '../../bench/cpu';
import { cliGet } from '../../bench/peers';
import { randomFile, registry, startPeer } from '../peer/support';
import { tempDir } from '../support/cli';

const linux = process.platform === 'linux';

/** Burns this much CPU time (not wall time: a busy machine only stretches it). */
const BURN = `const t0 = process.cpuUsage(); const used = () => { const u = process.cpuUsage(t0); return u.user + u.system; }; function burnCpuHere() { let x = 0; while (used() < MS * 1000) for (let i = 0; i < 1e6; i++) x = Math.sqrt(x + i); return x; } burnCpuHere();`;

function runNode(args: string[]): Promise<number | null> {
  return new Promise((resolve) => spawn(process.execPath, args, { stdio: 'ignore' }).on('close', resolve));
}

test('procCpu reads this process CPU time and its reaped children', { skip: !linux && 'Linux /proc only', timeout: 60_000 }, async () => {
  const before = procCpu('self')!;
  const t0 = process.cpuUsage();
  while (process.cpuUsage(t0).user + process.cpuUsage(t0).system < 300_000) Math.sqrt(Math.random());
  const mid = procCpu('self')!;
  assert.ok(mid.self - before.self >= 0.25, `self grew by ${mid.self - before.self} s after 0.3 s of CPU`);
  assert.equal(await runNode(['-e', BURN.replace('MS', '400')]), 0);
  const end = procCpu('self')!;
  assert.ok(end.children - mid.children >= 0.35, `children grew by ${end.children - mid.children} s after a child burned 0.4 s`);
  assert.equal(procCpu(2 ** 22 + 12345), undefined, 'no such process');
});

test('runQueueWait: more busy processes than cores wait for a CPU, and it says how long', { skip: !linux && 'Linux /proc only', timeout: 60_000 }, async () => {
  assert.equal(runQueueWait(2 ** 22 + 12345), undefined, 'no such process');
  // Two more spinning processes than cores: together they must wait about 2 x the spin.
  const spinMs = 1500;
  const kids = Array.from({ length: cpus().length + 2 }, () =>
    spawn(process.execPath, ['-e', `const t = Date.now(); while (Date.now() - t < ${spinMs});`], { stdio: 'ignore' }),
  );
  try {
    await new Promise((r) => setTimeout(r, spinMs - 300));
    const waited = kids.reduce((s, k) => s + (runQueueWait(k.pid!) ?? NaN), 0);
    const ran = kids.reduce((s, k) => s + (procCpu(k.pid!)?.self ?? NaN), 0);
    assert.ok(waited > 0.5, `the processes waited ${waited.toFixed(3)} s for a CPU in all (ran ${ran.toFixed(2)} s)`);
  } finally {
    for (const k of kids) k.kill('SIGKILL');
  }
});

test('summariseProfile names the function that burned the CPU', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = await tempDir();
  after(cleanup);
  assert.equal(await runNode(['--cpu-prof', '--cpu-prof-dir', dir, '-e', BURN.replace('MS', '300')]), 0);
  const [file] = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const s = summariseProfile(join(dir, file!), 3);
  assert.match(s.top[0]!.name, /^burnCpuHere /);
  assert.ok(s.top[0]!.percent > 30, `burnCpuHere had ${s.top[0]!.percent} % of the samples`);
});

test("modelStats parses a real UDP sender's P2PSHARE_UDP_DEBUG lines", { timeout: 120_000 }, async () => {
  const { dir, cleanup } = await tempDir();
  after(cleanup);
  const share = join(dir, 'share');
  await mkdir(share);
  await randomFile(join(share, 'f.bin'), 8 * 1024 * 1024);
  const reg = await registry({ ttl: 600 });
  after(() => reg.close());
  const owner = await startPeer('debug-owner', reg.url, share, [], { P2PSHARE_UDP_DEBUG: '1' });
  after(() => owner.cli.stop());
  const got = await cliGet({ registryUrl: reg.url, peer: 'debug-owner', file: 'f.bin', via: 'udp', downloads: join(dir, 'dl'), timeoutMs: 60_000 });
  assert.ok(got.ok, got.failure);
  const stats = modelStats(owner.cli.stderr);
  assert.ok(stats, `no rate-model line in the owner's stderr:\n${owner.cli.stderr.slice(0, 2000)}`);
  assert.ok(Number.isFinite(stats.bwMedian) && stats.bwPeak >= stats.bwMedian, JSON.stringify(stats));
  assert.ok(Number.isInteger(stats.retransmitted) && stats.retransmitted >= 0, JSON.stringify(stats));
});
