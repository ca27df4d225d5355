// Shared set-up for peer tests: an in-process registry, peers as real CLI processes, files.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { startRegistry } from '../../src/registry/index';
import { startCli, type RunningCli } from '../support/cli';

export async function registry(opts: { ttl?: number; port?: number } = {}) {
  return startRegistry({ host: '127.0.0.1', port: opts.port ?? 0, ttl: opts.ttl ?? 30, stunPort: null });
}

/** Starts `p2pshare peer` and waits for its ready line; resolves with the process and its port. */
export async function startPeer(name: string, registryUrl: string, cwd: string, extra: string[] = []): Promise<{ cli: RunningCli; port: number }> {
  const cli = startCli(['peer', '--name', name, '--registry', registryUrl, '--no-interactive', ...extra], { cwd });
  const m = await cli.waitForLine(/ready on udp\/tcp port (\d+)/, 30_000);
  return { cli, port: Number(m[1]) };
}

/** Writes `size` random bytes to `path` in 1 MiB pieces (bounded memory); returns the SHA-256. */
export async function randomFile(path: string, size: number): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const chunk = randomBytes(Math.min(1024 * 1024, size - done));
      hash.update(chunk);
      await fh.write(chunk);
      done += chunk.length;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

export async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const c of createReadStream(path)) hash.update(c as Buffer);
  return hash.digest('hex');
}
