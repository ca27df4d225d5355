import type { Command } from '../cli/command';
import { registryOption } from '../cli/command';
import { CliError, ExitCode } from '../cli/errors';

export const peersCommand: Command = {
  name: 'peers',
  summary: 'list the peers online',
  help: `Usage: p2pshare peers [--registry URL] [--json]`,
  options: { ...registryOption },
  positionals: [0, 2],
  async run() {
    throw new CliError(ExitCode.failed, 'peers: not built yet');
  },
};
