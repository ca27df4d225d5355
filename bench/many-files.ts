// Rows 8a-8b of `npm run bench`: many small files in one `get` beside one file of the same bytes in
// one `get`, and beside a bare `tar c | tar x` through a loopback TCP socket (the floor of moving
// a tree: no hashing, no encryption, no fsync), measured alternately in one run.
//   node build.mjs && node --import tsx bench/many-files.ts    (this row alone)
//   BENCH_MANY_FILES=10000 BENCH_MANY_BYTES=4096 BENCH_MANY_ROUNDS=3 (defaults)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { tempDir } from '../test/support/cli';
import { registry, startPeer } from '../test/peer/support';
import { cliGet, type GetOutcome } from './peers';
import { fmtRate, markdownTable, median, MiB, mibPerSecond } from './util';

const FILES = Number(process.env.BENCH_MANY_FILES ?? 10_000);
const FILE_BYTES = Number(process.env.BENCH_MANY_BYTES ?? 4096);
const ROUNDS = Number(process.env.BENCH_MANY_ROUNDS ?? 3);

export interface ManyFilesRow {
  label: string;
  ours: string;
  baseline: string;
  ratio: string;
  notes: string;
}

/** `FILES` files of `FILE_BYTES` in 100 folders, and one file of all their bytes. */
async function makeShare(share: string): Promise<void> {
  for (let i = 0; i < FILES; i++) {
    const folder = join(share, 'many', `d${String(i % 100).padStart(2, '0')}`);
    if (i < 100) await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `f${i}.bin`), randomBytes(FILE_BYTES));
  }
  await writeFile(join(share, 'one.bin'), randomBytes(FILES * FILE_BYTES));
}

/** `tar -c` of `folder` into a loopback TCP socket, `tar -x` of it into `dest`: seconds from start to the extract's exit. */
async function tarPipe(parent: string, folder: string, dest: string): Promise<number> {
  await mkdir(dest, { recursive: true });
  const t0 = performance.now();
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const extracted = new Promise<number>((resolve, reject) => {
      server.once('connection', (sock) => {
        const x = spawn('tar', ['-x', '-f', '-', '-C', dest], { stdio: ['pipe', 'ignore', 'inherit'] });
        sock.pipe(x.stdin!);
        x.on('exit', (code) => (code === 0 ? resolve((performance.now() - t0) / 1000) : reject(new Error(`tar -x exited ${code}`))));
      });
    });
    const c = spawn('tar', ['-c', '-f', '-', '-C', parent, folder], { stdio: ['ignore', 'pipe', 'inherit'] });
    const sock = net.connect(port, '127.0.0.1');
    c.stdout!.pipe(sock);
    return await extracted;
  } finally {
    server.close();
    await rm(dest, { recursive: true, force: true });
  }
}

export async function manyFilesRows(log: (line: string) => void): Promise<ManyFilesRow[]> {
  const { dir, cleanup } = await tempDir('p2pshare-bench-many-');
  try {
    const share = join(dir, 'share');
    await makeShare(share);
    const reg = await registry({ ttl: 3600 });
    const owner = await startPeer('many-owner', reg.url, share, ['--share', 'many', '--share', 'one.bin']).catch(async (err) => {
      await reg.close();
      throw err;
    });
    const setup = { registryUrl: reg.url };
    try {
      let n = 0;
      const get = (name: string): Promise<GetOutcome> =>
        cliGet({ registryUrl: setup.registryUrl, peer: 'many-owner', file: name, via: 'tcp', downloads: join(dir, `dl-${n++}`), timeoutMs: 600_000 });
      const many: number[] = [];
      const one: number[] = [];
      const tar: number[] = [];
      let failure: string | undefined;
      await get('one.bin'); // warm-up: page cache, the owner's JIT
      for (let r = 0; r < ROUNDS && !failure; r++) {
        const m = await get('many/');
        const o = await get('one.bin');
        const t = await tarPipe(share, 'many', join(dir, `tar-${r}`));
        if (!m.ok || !o.ok) failure = m.failure ?? o.failure ?? 'failed';
        else {
          many.push(m.seconds);
          one.push(o.seconds);
          tar.push(t);
        }
        log(`many files round ${r + 1}: ${FILES} files ${m.seconds.toFixed(2)} s, one file ${o.seconds.toFixed(2)} s, tar pipe ${t.toFixed(2)} s`);
      }
      const bytes = FILES * FILE_BYTES;
      if (failure || many.length === 0) {
        return [{ label: `8. ${FILES} files of ${FILE_BYTES} B in one get`, ours: `failed: ${failure}`, baseline: '', ratio: '', notes: '' }];
      }
      const s = (xs: number[]) => `${median(xs).toFixed(2)} s (${fmtRate(mibPerSecond(bytes, median(xs)))})`;
      return [
        {
          label: `8a. loopback: ${FILES} files of ${FILE_BYTES} B in one get vs one ${(bytes / MiB).toFixed(0)} MiB file in one get`,
          ours: s(many),
          baseline: s(one),
          ratio: `${(median(many) / median(one)).toFixed(1)}× the time`,
          notes: `median of ${many.length} alternating rounds, processes timed from spawn to exit; target within 3×`,
        },
        {
          label: `8b. loopback: the same ${FILES} files in one get vs bare tar c → TCP → tar x`,
          ours: s(many),
          baseline: s(tar),
          ratio: `${(median(many) / median(tar)).toFixed(1)}× the time`,
          notes: 'the tar pipe neither hashes, encrypts nor syncs to disk: the floor of moving a tree on this machine',
        },
      ];
    } finally {
      await owner.cli.stop();
      await reg.close();
    }
  } finally {
    await cleanup();
  }
}

if (process.argv[1]?.endsWith('many-files.ts')) {
  manyFilesRows((l) => process.stderr.write(`${l}\n`)).then((rows) => {
    console.log(markdownTable(['case', 'ours', 'baseline', 'ratio', 'notes'], rows.map((r) => [r.label, r.ours, r.baseline, r.ratio, r.notes]), [1, 2, 3]));
  });
}
