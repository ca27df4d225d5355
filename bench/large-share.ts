// A share of 100,000 small files (issue 15, item 6), side by side in one run: how long until the
// owner can serve (scan: after the walk) against waiting for every digest (build), and hashing
// small files through one descriptor in one read against the earlier stat + 1 MiB reads + stat.
// Run: node --import tsx bench/large-share.ts [files]   (default 100000; CPU shared: ratios only)
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { sha256File } from '../src/core/hash';
import { ShareIndex } from '../src/peer/share';
import { machineLine, median } from './util';

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

    // The same 5,000 small files, one at a time, the two ways taking turns, 3 rounds each: the
    // earlier hashing (stat, 1 MiB reads, stat) against a lookup of a file not hashed yet
    // (realpath and stat to check it, then one descriptor: fstat, one read, fstat).
    const sub = join(root, 'a0');
    const paths = (await ShareIndex.scan([sub], dir, { backgroundHashes: 0 })).list().slice(0, 5000).map((f) => f.path);
    const old: number[] = [];
    const now: number[] = [];
    for (let round = 0; round < 3; round++) {
      t = performance.now();
      for (const p of paths) {
        await stat(p);
        await sha256File(p);
        await stat(p);
      }
      old.push((performance.now() - t) / paths.length);
      const fresh = await ShareIndex.scan([sub], dir, { backgroundHashes: 0 });
      t = performance.now();
      for (const f of fresh.list().slice(0, paths.length)) await fresh.lookup(f.name);
      now.push((performance.now() - t) / paths.length);
    }
    const o = median(old);
    const n = median(now);
    console.log(`one small file at a time: earlier hashing ${(o * 1000).toFixed(0)} µs, lookup of one not hashed yet ${(n * 1000).toFixed(0)} µs (${(o / n).toFixed(1)}x)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
