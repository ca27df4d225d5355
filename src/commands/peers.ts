import type { Command } from './args';
import { boolOpt, registryOption, registryUrl } from './args';
import { decodeKey, fingerprint } from '../crypto/identity';
import { RegistryClient } from '../registry/client';
import { padToWidth } from '../ui/text';

export const peersCommand: Command = {
  name: 'peers',
  summary: 'list the peers online',
  help: `Usage: p2pshare peers [--registry URL] [--json]

Lists the peers registered at the registry, one a line: name and key fingerprint
(--json: {"peers":[{"name","fingerprint","lastSeen"}]}). The registry vouches for these keys;
compare a fingerprint out of band (p2pshare id on the other machine) before trusting it.`,
  options: { ...registryOption, json: { type: 'boolean' } },
  positionals: [0, 0],
  async run(args) {
    const peers = (await new RegistryClient(registryUrl(args)).list()).map((p) => {
      const key = decodeKey(p.publicKey);
      return { name: p.name, fingerprint: key ? fingerprint(key) : null, lastSeen: p.lastSeen };
    });
    if (boolOpt(args, 'json')) {
      process.stdout.write(`${JSON.stringify({ peers })}\n`);
    } else {
      const width = Math.max(0, ...peers.map((p) => p.name.length));
      for (const p of peers) process.stdout.write(`${padToWidth(p.name, width)}  ${p.fingerprint ?? '(no key)'}\n`);
      if (peers.length === 0) process.stderr.write('no peers online\n');
    }
  },
};
