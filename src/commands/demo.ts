// `p2pshare demo` (README "A 60-second tour"): the whole system in this one process — a registry on
// the memory store, alice sharing a generated text and JPEG, bob fetching both (text over TCP,
// the image over UDP), verified, with rates and the preview; then everything is cleaned up.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from './args';
import { stringOpt, usage } from './args';
import { abortable } from '../core/async';
import { P2pError } from '../core/errors';
import type { TransportName } from '../wire/control';
import type { FetchEvent } from '../control/server';
import { fetchFile, listFiles, type FetchResult } from '../peer/fetch';
import { describeFetch } from './interactive';
import { loadOrCreateIdentity, type Identity } from '../crypto/identity';
import { Peer } from '../peer/peer';
import { ShareIndex } from '../peer/share';
import { RegistryClient } from '../registry/client';
import { startRegistry, type RunningRegistry } from '../registry/index';
import { formatBytes, formatDuration, formatRate } from '../ui/format';
import { colors } from '../ui/output';
import { showPreview } from '../ui/preview';
import { createProgress } from '../ui/progress';
import { sampleJpeg, sampleText } from '../ui/sample';

/** The whole demo gives up after this long (it takes well under a second normally). */
const DEMO_TIMEOUT_MS = 30_000;
/** How long to wait for alice's own account of a transfer bob has finished. */
const OWNER_WAIT_MS = 3000;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run registry + two peers locally and fetch a text file and a JPEG',
  help: `Usage: p2pshare demo [--keep DIR]

Runs the whole system in this process, with nothing installed: a registry on the memory store,
peer alice sharing a generated my_file.txt and my_file.jpg, and peer bob fetching both (the text
over TCP, the image over UDP), verifying their SHA-256, showing the rates and the picture.
Everything is cleaned up afterwards.

Options:
  --keep DIR   work in DIR (created; must be empty or missing) and keep it afterwards:
               DIR/alice holds the originals, DIR/bob/downloads what bob fetched`,
  options: { keep: { type: 'string' } },
  positionals: [0, 0],
  async run(args) {
    const keep = stringOpt(args, 'keep');
    if (keep !== undefined && (await readdir(keep).catch(() => [])).length > 0) {
      throw usage(`demo: --keep ${keep}: the folder must be empty or missing`);
    }
    const root = keep ? resolve(keep) : await mkdtemp(join(tmpdir(), 'p2pshare-demo-'));
    const stop = new AbortController();
    const onSignal = () => stop.abort(new P2pError('ABORTED', 'demo interrupted'));
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const timer = setTimeout(() => stop.abort(new P2pError('TIMEOUT', `demo did not finish within ${DEMO_TIMEOUT_MS / 1000} s`)), DEMO_TIMEOUT_MS);
    const cleanup: Array<() => Promise<unknown>> = [];
    try {
      await abortable(runDemo(root, cleanup), stop.signal);
    } catch (err) {
      // A fetch abandoned by a timeout or Ctrl+C may still hold a socket: never let it keep us.
      setTimeout(() => process.exit(), 2000).unref();
      throw err;
    } finally {
      clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // Peers first (they unregister), then the registry, then the files.
      for (const step of cleanup.reverse()) await step().catch(() => {});
      if (!keep) await rm(root, { recursive: true, force: true });
      const c = colors(process.stdout);
      process.stdout.write(c.dim(keep ? `peers stopped, registry closed; files kept in ${root}\n` : 'cleaned up: peers unregistered, sockets closed, temporary folder removed\n'));
    }
  },
};

async function runDemo(root: string, cleanup: Array<() => Promise<unknown>>): Promise<void> {
  const out = process.stdout;
  const c = colors(out);
  const started = Date.now();
  const aliceDir = join(root, 'alice');
  const bobDir = join(root, 'bob');
  const downloads = join(bobDir, 'downloads');
  await mkdir(aliceDir, { recursive: true });
  await mkdir(downloads, { recursive: true });
  await writeFile(join(aliceDir, 'my_file.txt'), sampleText());
  await writeFile(join(aliceDir, 'my_file.jpg'), sampleJpeg());

  out.write(`${c.bold('p2pshare demo')} ${c.dim('— a registry and two peers, all on this machine')}\n\n`);
  const registry: RunningRegistry = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null });
  cleanup.push(() => registry.close());
  out.write(`  ${c.cyan('registry')}  ${registry.url} (${registry.store} store)\n`);

  // Each peer's own identity in its folder: the demo never touches the user's key or known_peers.
  const aliceId = await loadOrCreateIdentity(join(aliceDir, '.identity'));
  const bobId = await loadOrCreateIdentity(join(bobDir, '.identity'));
  const aliceLog = new OwnerLog();
  const aliceShare = await ShareIndex.build([join(aliceDir, 'my_file.txt'), join(aliceDir, 'my_file.jpg')]);
  const alice = await Peer.start({
    name: 'alice',
    registryUrl: registry.url,
    share: aliceShare,
    port: 0,
    identity: aliceId.privateKey,
    onFetch: (e) => aliceLog.record(e),
  });
  cleanup.push(() => alice.stop());
  out.write(`  ${c.cyan('alice')}     udp/tcp port ${alice.port}, key ${aliceId.fingerprint}, shares ${aliceShare.list().map((f) => f.name).join(' and ')}\n`);

  const bobShare = await ShareIndex.build([], bobDir); // bob's folder holds only downloads/: shares nothing
  const bob = await Peer.start({ name: 'bob', registryUrl: registry.url, share: bobShare, port: 0, identity: bobId.privateKey });
  cleanup.push(() => bob.stop());
  out.write(`  ${c.cyan('bob')}       udp/tcp port ${bob.port}, saves to ${downloads}\n\n`);

  const client = new RegistryClient(registry.url);
  const online = (await client.list()).map((p) => p.name).sort();
  out.write(`bob asks the registry who is online: ${online.join(', ')}\n`);
  const { files: entries, fingerprint } = await listFiles({ registry: client, peer: 'alice', identity: bobId });
  out.write(`bob shakes hands with alice (key ${fingerprint}, checked by the Noise handshake) and asks for her list:\n`);
  for (const e of entries) {
    const dims = e.width > 0 && e.height > 0 ? ` ${e.width} × ${e.height}` : '';
    out.write(`  ${e.name.padEnd(12)} ${formatBytes(e.size).padStart(10)}  ${(e.kind + dims).padEnd(17)}  sha256 ${e.sha256.slice(0, 16)}…\n`);
  }
  out.write('\n');

  const sizeOf = (name: string) => entries.find((e) => e.name === name)?.size ?? 0;
  const text = await fetchShown(client, bobId, 'my_file.txt', sizeOf('my_file.txt'), 'tcp', downloads, aliceLog);
  const image = await fetchShown(client, bobId, 'my_file.jpg', sizeOf('my_file.jpg'), 'udp', downloads, aliceLog);
  await showPreview(image.path, out);

  const total = (Date.now() - started) / 1000;
  out.write(`\n${c.green('✓')} both files fetched and verified (${[text, image].map((r) => `${r.name} over ${r.via.toUpperCase()}`).join(', ')}) in ${formatDuration(total)}\n`);
}

/** One fetch by bob with a progress bar, then its result line with the full SHA-256. */
async function fetchShown(client: RegistryClient, identity: Identity, file: string, size: number, via: TransportName, downloads: string, ownerLog: OwnerLog): Promise<FetchResult> {
  const out = process.stdout;
  const c = colors(out);
  out.write(`bob fetches ${file} over ${via.toUpperCase()}\n`);
  const progress = createProgress({ stream: process.stderr, label: `${file} via ${via.toUpperCase()}`, total: size });
  let res: FetchResult;
  try {
    res = await fetchFile({ registry: client, identity, peer: 'alice', file, via, downloads, onProgress: (n) => progress.update(n) });
  } finally {
    progress.finish();
  }
  const served = await ownerLog.take(file, OWNER_WAIT_MS);
  out.write(c.dim(`  alice: ${served ? describeFetch(served) : `no word about ${file} yet`}\n`));
  const rate = res.bytesTransferred / Math.max(res.seconds, 0.001);
  out.write(`${c.green('✓')} ${res.name}: ${formatBytes(res.size)} over ${res.via.toUpperCase()} in ${formatDuration(res.seconds)} (${formatRate(rate)}), SHA-256 verified ${res.sha256}\n`);
  out.write(c.dim(`  saved ${res.path}\n`));
  return res;
}

/**
 * The owner's side of a transfer ends a moment after the requester has the file (its last
 * confirmation): its events are kept here and shown after bob's progress bar is gone.
 */
class OwnerLog {
  private readonly events = new Map<string, FetchEvent>();
  private readonly waiters = new Map<string, () => void>();

  record(e: FetchEvent): void {
    this.events.set(e.name, e);
    this.waiters.get(e.name)?.();
  }

  /** The event for `name`, waiting up to `ms` for it; undefined if none came. */
  take(name: string, ms: number): Promise<FetchEvent | undefined> {
    return new Promise((resolveTake) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(name);
        const e = this.events.get(name);
        this.events.delete(name);
        resolveTake(e);
      };
      const timer = setTimeout(done, ms);
      if (this.events.has(name)) return done();
      this.waiters.set(name, done);
    });
  }
}
