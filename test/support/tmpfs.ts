// A small real file system for tests of what happens when the disk is short: a tmpfs mounted
// on a test's folder (root needed). Where it cannot be mounted the test is skipped, loudly,
// except under CI=true, where that is a failure.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/** Mounts a tmpfs of `mib` MiB at `dir`; false (and a loud skip of `t`) when this machine cannot. */
export function mountTmpfs(dir: string, mib: number, t: { skip(msg: string): void }): boolean {
  const res = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir], { encoding: 'utf8' });
  if (res.status === 0) return true;
  const why = `cannot mount a tmpfs (${(res.stderr || res.error?.message || '').trim()}): the free-space check was NOT tested`;
  if (process.env.CI === 'true') assert.fail(why);
  console.error(`SKIPPED: ${why}`);
  t.skip(why);
  return false;
}

export function unmount(dir: string): void {
  spawnSync('umount', [dir]);
}
