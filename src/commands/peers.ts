import type { Command } from './args';
import { boolOpt, registryOption, registryUrl } from './args';
import { RegistryClient } from '../registry/client';

export const peersCommand: Command = {
  name: 'peers',
  summary: 'list the peers online',
  help: `Usage: p2pshare peers [--registry URL] [--json]

Lists the peers registered at the registry, one name a line
(--json: {"peers":[{"name":...,"lastSeen":...}]}).`,
  options: { ...registryOption, json: { type: 'boolean' } },
  positionals: [0, 0],
  async run(args) {
    const peers = await new RegistryClient(registryUrl(args)).list();
    if (boolOpt(args, 'json')) {
      process.stdout.write(`${JSON.stringify({ peers: peers.map((p) => ({ name: p.name, lastSeen: p.lastSeen })) })}\n`);
    } else {
      for (const p of peers) process.stdout.write(`${p.name}\n`);
      if (peers.length === 0) process.stderr.write('no peers online\n');
    }
  },
};
