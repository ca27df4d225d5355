import type { Command } from './args';
import { boolOpt, intOpt, listOpt, registryOption, registryUrl, stringOpt, untilSignalled, usage } from './args';
import { readyLine, runInteractive } from './interactive';
import { PrivateKey, X25519_KEY_BYTES } from '../core/x25519';
import { Peer } from '../peer/peer';
import { ShareIndex } from '../peer/share';
import { isValidName } from '../registry/names';

export const peerCommand: Command = {
  name: 'peer',
  summary: 'register a name, share files, fetch from others',
  help: `Usage: p2pshare peer [--name NAME] [--registry URL] [--share PATH]... [--downloads DIR]
                     [--port N] [--advertise HOST] [--no-interactive]

Registers NAME at the registry and serves the shared files to other peers until Ctrl+C
(which unregisters and exits 0). On a terminal (without --no-interactive) it also lets you
pick a peer and one of its files to fetch, again and again, and asks for a name when --name
is missing or taken.

Options:
  --name NAME        unique name: 1-32 letters, digits, '.', '_', '-'
  --registry URL     registry (default $P2PSHARE_REGISTRY, else http://127.0.0.1:8000)
  --share PATH       a file or folder to share (repeatable; folders recursively, no dotfiles);
                     default: the visible files directly in the current folder
  --downloads DIR    where fetched files go (default ./downloads)
  --port N           UDP and TCP port to serve on (default 0 = any free port)
  --advertise HOST   address other peers should use to reach this one
  --no-interactive   only serve (also the case without a terminal)`,
  options: {
    ...registryOption,
    name: { type: 'string' },
    share: { type: 'string', multiple: true },
    downloads: { type: 'string' },
    port: { type: 'string' },
    advertise: { type: 'string' },
    'no-interactive': { type: 'boolean' },
  },
  positionals: [0, 0],
  async run(args) {
    const name = stringOpt(args, 'name');
    const interactive = !boolOpt(args, 'no-interactive') && process.stdin.isTTY === true && process.stdout.isTTY === true;
    if (name === undefined && !interactive) throw usage('peer: --name NAME is required (without a terminal, or with --no-interactive)');
    if (name !== undefined && !isValidName(name)) throw usage(`peer: invalid name '${name}' (1-32 letters, digits, '.', '_', '-')`);
    const port = intOpt(args, 'port', 0, 0, 65535);
    const registry = registryUrl(args);
    const advertise = stringOpt(args, 'advertise');
    const downloads = stringOpt(args, 'downloads') ?? 'downloads';
    let share: ShareIndex;
    try {
      share = await ShareIndex.build(listOpt(args, 'share'));
    } catch (err) {
      throw usage((err as Error).message);
    }
    if (interactive) {
      return runInteractive({ name, registryUrl: registry, share, port, downloads, ...(advertise ? { advertise } : {}) });
    }
    return serveOnly({ name: name!, registryUrl: registry, share, port, ...(advertise ? { advertise } : {}) });
  },
};

/**
 * Until peers keep an identity file, each run registers with a new key; for the tests that
 * restart a peer under the same identity, P2PSHARE_TEST_IDENTITY (the 32 private key bytes in
 * base64url; undocumented, test-only) fixes it.
 */
function testIdentity(): PrivateKey | undefined {
  const text = process.env.P2PSHARE_TEST_IDENTITY;
  if (!text) return undefined;
  const raw = Buffer.from(text, 'base64url');
  if (raw.length !== X25519_KEY_BYTES) throw usage('P2PSHARE_TEST_IDENTITY must be 32 bytes in base64url');
  return PrivateKey.fromRaw(raw);
}

/** Non-interactive mode: register, print the ready line, log fetches, serve until signalled. */
async function serveOnly(o: { name: string; registryUrl: string; share: ShareIndex; port: number; advertise?: string }): Promise<void> {
  const { name } = o;
  const identity = testIdentity();
  const peer = await Peer.start({
    ...o,
    ...(identity ? { identity } : {}),
    onFetch: (e) =>
      process.stdout.write(
        e.ok
          ? `${name} -> ${e.from.address}:${e.from.port} sent ${e.name} (${e.size - e.offset} bytes, ${e.via})\n`
          : `${name} -> ${e.from.address}:${e.from.port} failed to send ${e.name}: ${e.error}\n`,
      ),
    onNotice: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${readyLine(peer, o.share)}\n`);
  await untilSignalled();
  await Promise.race([peer.stop(), new Promise((r) => setTimeout(r, 4000).unref())]);
  // A transfer cut short by the signal may still hold a timer or socket: never let it keep us.
  setTimeout(() => process.exit(), 1000).unref();
}
