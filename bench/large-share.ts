// A share of 100,000 small files (issue 15, item 6), side by side in one run: how long until the
// owner can serve (scan: after the walk) against waiting for every digest (build).
// Run: node --import tsx bench/large-share.ts [files]   (default 100000; CPU shared: ratios only)
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { ShareIndex } from '../src/peer/share';
import { machineLine } from './util';

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 100_000);
  const dir = mkdtempSync(join(tmpdir(), 'p2pshare-bench-share-'));
  try {
    const perFolder = 1000;
    for (let f = 0; f * perFolder < total; f++) {
      const folder = join(dir, 'tree', `a${f % 10}`, `b${f}`);
      mkdirSync(folder, { recursive: true });
      for (let k = 0; k < perFolder && f * perFolder + k < total; k++) {
        const fd = openSync(join(folder, `f${k}.txt`), 'w');
        if (k % 7 === 0) writeSync(fd, `file ${f}/${k}\n`);
        closeSync(fd);
      }
    }
    console.log(machineLine());
    console.log(`load average at start: ${loadavg()[0]!.toFixed(1)}; ${total} files`);
    const root = join(dir, 'tree');

    let t = performance.now();
    const scanned = await ShareIndex.scan([root], dir);
    const ready = (performance.now() - t) / 1000;
    await scanned.hashed;
    const allHashed = (performance.now() - t) / 1000;
    t = performance.now();
    await ShareIndex.build([root], dir);
    const built = (performance.now() - t) / 1000;
    console.log(`scan: ready after ${ready.toFixed(1)} s (every digest ${allHashed.toFixed(1)} s); build: ready after ${built.toFixed(1)} s; ready ${(built / ready).toFixed(1)}x sooner`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
