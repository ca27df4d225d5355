import type { Command } from './args';
import { boolOpt, identityOf, identityOption } from './args';
import { encodeKey } from '../crypto/identity';

export const idCommand: Command = {
  name: 'id',
  summary: "show this peer's key fingerprint (creating the key on first use)",
  help: `Usage: p2pshare id [--json] [--identity FILE]

Prints the fingerprint of this peer's key: 24 characters to compare out of band (read it out,
paste it in a chat) with what others see in p2pshare peers, or to give them for get
NAME@FINGERPRINT and peer --allow. The key is created on first use in
$XDG_CONFIG_HOME/p2pshare/identity (else ~/.config/p2pshare/identity), mode 0600.

Options:
  --json           print {"fingerprint","publicKey","path"} (publicKey: base64url, 32 bytes)
  --identity FILE  another key file`,
  options: { ...identityOption, json: { type: 'boolean' } },
  positionals: [0, 0],
  async run(args) {
    const id = await identityOf(args);
    if (boolOpt(args, 'json')) {
      process.stdout.write(`${JSON.stringify({ fingerprint: id.fingerprint, publicKey: encodeKey(id.publicKey), path: id.path })}\n`);
    } else {
      process.stdout.write(`${id.fingerprint}\n`);
    }
  },
};
