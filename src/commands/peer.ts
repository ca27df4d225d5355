import type { Command } from './args';
import { boolOpt, identityOf, identityOption, intOpt, listOpt, registryOption, registryUrl, stringOpt, readyUntilSignalled, usage } from './args';
import { readyLine, runInteractive } from './interactive';
import type { Identity } from '../crypto/identity';
import { allowList, type AllowList } from '../peer/allow';
import { Peer } from '../peer/peer';
import { RegistryClient } from '../registry/client';
import { ShareIndex } from '../peer/share';
import { isValidName } from '../registry/names';
import { escaped } from '../ui/text';
import { announceHashing } from './hashing';

export const peerCommand: Command = {
  name: 'peer',
  summary: 'register a name, share files, fetch from others',
  help: `Usage: p2pshare peer [--name NAME] [--registry URL] [--share PATH]... [--downloads DIR]
                     [--port N] [--advertise HOST] [--no-interactive] [--allow FINGERPRINT|NAME]...
                     [--identity FILE]

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
  --no-interactive   only serve (also the case without a terminal)
  --allow WHO        serve only this key fingerprint or this peer name's key (repeatable;
                     default: anyone may fetch)
  --keepalive S      seconds between keepalives to the registry's UDP port, which keep this
                     peer's NAT mapping open for introductions (default 20, at most 25)
  --identity FILE    this peer's key (default ~/.config/p2pshare/identity); the name is bound
                     to it at the registry, and the ready line shows its fingerprint`,
  options: {
    ...registryOption,
    name: { type: 'string' },
    share: { type: 'string', multiple: true },
    downloads: { type: 'string' },
    port: { type: 'string' },
    advertise: { type: 'string' },
    'no-interactive': { type: 'boolean' },
    allow: { type: 'string', multiple: true },
    keepalive: { type: 'string' },
    ...identityOption,
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
      // Ready once the folders are walked; the digests come in the background (README "Sharing many files").
      share = await ShareIndex.scan(listOpt(args, 'share'));
    } catch (err) {
      throw usage((err as Error).message);
    }
    let allow: AllowList | undefined;
    try {
      allow = listOpt(args, 'allow').length > 0 ? allowList(listOpt(args, 'allow'), new RegistryClient(registry)) : undefined;
    } catch (err) {
      throw usage((err as Error).message);
    }
    const identity = await identityOf(args);
    const keepaliveMs = intOpt(args, 'keepalive', 20, 1, 25) * 1000;
    const common = { registryUrl: registry, share, port, identity, keepaliveMs, ...(advertise ? { advertise } : {}), ...(allow ? { allow } : {}) };
    if (interactive) return runInteractive({ ...common, name, downloads });
    return serveOnly({ ...common, name: name! });
  },
};

/** Non-interactive mode: register, print the ready line, log fetches, serve until signalled. */
async function serveOnly(o: { name: string; registryUrl: string; share: ShareIndex; port: number; identity: Identity; keepaliveMs: number; advertise?: string; allow?: AllowList }): Promise<void> {
  const { name, identity, allow, ...rest } = o;
  const peer = await Peer.start({
    ...rest,
    name,
    identity: identity.privateKey,
    ...(allow ? { allow: (key: Buffer) => allow.allows(key) } : {}),
    onFetch: (e) => {
      // A batch is one line for all its files (PROTOCOL.md 5.1), not one per file.
      const what = e.files !== undefined ? `${e.files} files` : escaped(e.name);
      process.stdout.write(
        e.ok
          ? `${name} -> ${e.from.address}:${e.from.port} sent ${what} (${e.size - e.offset} bytes, ${e.via})\n`
          : `${name} -> ${e.from.address}:${e.from.port} failed to send ${what}${e.files !== undefined ? ' of a batch' : ''}: ${escaped(e.error ?? '')}\n`,
      );
    },
    onNotice: (line) => process.stderr.write(`${line}\n`),
  });
  const signalled = readyUntilSignalled(readyLine(peer, o.share)); // the line is out when this returns
  const stopAnnouncing = announceHashing(o.share, { line: (text) => process.stderr.write(`${text}\n`), live: process.stderr });
  await signalled;
  stopAnnouncing();
  o.share.close();
  await Promise.race([peer.stop(), new Promise((r) => setTimeout(r, 4000).unref())]);
  // A transfer cut short by the signal may still hold a timer or socket: never let it keep us.
  setTimeout(() => process.exit(), 1000).unref();
}
