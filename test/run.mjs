// Runs every test/**/*.test.ts with node:test through tsx.
// TEST_ONLY=substring narrows the files (for local work; CI runs them all).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}
const only = process.env.TEST_ONLY;
const files = find('test').filter((f) => !only || f.includes(only)).sort();
if (files.length === 0) {
  console.error(`no test files match ${only ?? 'test/**/*.test.ts'}`);
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=600000', ...files],
  // tsx compiles each file with esbuild's transformSync; esbuild's default path for that is a
  // worker thread the caller waits on with Atomics.wait, with no timeout. A test file once hung
  // for the whole 600 s before its first test (CI, test/crypto/noise.test.ts, not reproducible
  // here), which is what a lost wake-up there looks like. "0" is esbuild's supported synchronous
  // path without that worker (a child process per call; tsx caches what it compiled).
  { stdio: 'inherit', env: { ...process.env, ESBUILD_WORKER_THREADS: '0' } },
);
process.exit(res.status ?? 1);
