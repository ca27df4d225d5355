// Our side of the transfer benchmarks: a registry, an owner peer (a real CLI process) and
// `get` runs against it, either as CLI processes (timed from spawn to exit) or in process.
import { rm } from 'node:fs/promises';
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import jpeg from 'jpeg-js';
import { fetchFile } from '../src/peer/fetch';
import { RegistryClient } from '../src/registry/client';
import { CLI, TEST_CONFIG_HOME, type RunningCli } from '../test/support/cli';
import { loadOrCreateIdentity } from '../src/crypto/identity';
import { join } from 'node:path';
import { pointRegistration, registry, startPeer } from '../test/peer/support';
import { failureLine, timeNode } from './util';

export type Transport = 'tcp' | 'udp';

/** What a get that cannot run because UDP is not in this build says (src/peer/fetch.ts). */
const NOT_BUILT = /not available in this build/;

export interface GetOutcome {
  ok: boolean;
  seconds: number;
  /** Set when the transport is missing from this build. */
  notBuilt: boolean;
  failure?: string;
  /** The get's own timer ("seconds" of --json: request, transfer, SHA-256 check, rename). */
  innerSeconds?: number;
}

export interface Setup {
  registryUrl: string;
  ownerPort: number;
  owner: RunningCli;
  close(): Promise<void>;
}

/** A registry in this process (long TTL: nothing expires mid-run) and one owner peer sharing `shareDir`. */
export async function startSetup(shareDir: string, ownerName = 'owner'): Promise<Setup> {
  const reg = await registry({ ttl: 3600 });
  try {
    const { cli, port } = await startPeer(ownerName, reg.url, shareDir);
    return {
      registryUrl: reg.url,
      ownerPort: port,
      owner: cli,
      async close() {
        await cli.stop();
        await reg.close();
      },
    };
  } catch (err) {
    await reg.close();
    throw err;
  }
}

/**
 * Another owner peer process `name` sharing `shareDir` whose registration then points at what
 * `front` starts in front of it (a relay, a proxy): a name is bound to its key and the handshake
 * to the name, so a path through a relay is another peer's registration, not an alias. `env` is
 * added to the owner's environment.
 */
export async function ownerBehind<T extends { port: number }>(registryUrl: string, name: string, shareDir: string, front: (ownerPort: number) => Promise<T>, env?: Record<string, string>): Promise<{ front: T; cli: RunningCli; close(): Promise<void> }> {
  const peer = await startPeer(name, registryUrl, shareDir, [], env);
  const f = await front(peer.port);
  await pointRegistration(registryUrl, name, f.port);
  return { front: f, cli: peer.cli, close: () => peer.cli.stop().then(() => undefined) };
}

/**
 * `p2pshare get PEER FILE --via T` as a process (`cli`: another bundle or entry, `nodeArgs`: Node's
 * own options before it), timed from spawn to exit; the download is deleted after.
 */
export async function cliGet(o: { registryUrl: string; peer: string; file: string; via: Transport; downloads: string; timeoutMs: number; cli?: string; nodeArgs?: string[] }): Promise<GetOutcome> {
  const run = await timeNode([...(o.nodeArgs ?? []), o.cli ?? CLI, 'get', o.peer, o.file, '--via', o.via, '--registry', o.registryUrl, '--downloads', o.downloads, '--json'], {
    // The bench's own identity and known_peers (a temporary folder), never the user's.
    env: { ...process.env, NO_COLOR: '1', P2PSHARE_REGISTRY: undefined, XDG_CONFIG_HOME: TEST_CONFIG_HOME },
    timeoutMs: o.timeoutMs,
  });
  await rm(o.downloads, { recursive: true, force: true });
  const ok = run.code === 0 && /"via":"(tcp|udp)"/.test(run.stdout);
  if (!ok) return { ok, seconds: run.seconds, notBuilt: NOT_BUILT.test(run.stderr), failure: failureLine(run) };
  const inner = (JSON.parse(run.stdout) as { seconds?: unknown }).seconds;
  return { ok, seconds: run.seconds, notBuilt: false, ...(typeof inner === 'number' ? { innerSeconds: inner } : {}) };
}

/** fetchFile() in this process (lookup, list, request, transfer, SHA-256 check, rename), timed. */
export async function inProcessGet(o: { registryUrl: string; peer: string; file: string; via: Transport; downloads: string; timeoutMs: number }): Promise<GetOutcome> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${o.timeoutMs} ms`)), o.timeoutMs);
    });
    const identity = await loadOrCreateIdentity(join(TEST_CONFIG_HOME, 'p2pshare', 'identity'));
    await Promise.race([fetchFile({ registry: new RegistryClient(o.registryUrl), identity, peer: o.peer, file: o.file, via: o.via, downloads: o.downloads }), timeout]);
    return { ok: true, seconds: (performance.now() - t0) / 1000, notBuilt: false };
  } catch (err) {
    const message = (err as Error).message;
    return { ok: false, seconds: (performance.now() - t0) / 1000, notBuilt: NOT_BUILT.test(message), failure: message };
  } finally {
    clearTimeout(timer);
    await rm(o.downloads, { recursive: true, force: true });
  }
}

/**
 * Writes a photo-like `width` x `height` JPEG (smooth gradients, soft shapes and fine grain so it
 * compresses like a real picture, not like a flat test card); returns its size in bytes.
 */
export async function writeJpeg(path: string, width: number, height: number, quality = 90): Promise<number> {
  const data = Buffer.alloc(width * height * 4);
  let seed = 12345;
  const noise = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 24) / 255 - 0.5;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const u = x / width;
      const v = y / height;
      const ripple = Math.sin(u * 23 + Math.cos(v * 7) * 3) * Math.cos(v * 17 - u * 5);
      const grain = noise() * 18;
      data[i] = clamp(40 + 180 * u + 30 * ripple + grain);
      data[i + 1] = clamp(70 + 120 * v + 40 * Math.sin(u * v * 40) + grain);
      data[i + 2] = clamp(200 - 140 * u * v + 35 * ripple + grain);
      data[i + 3] = 255;
    }
  }
  const encoded = jpeg.encode({ data, width, height }, quality).data;
  await writeFile(path, encoded);
  return encoded.length;
}

function clamp(n: number): number {
  return Math.max(0, Math.min(255, Math.round(n)));
}
