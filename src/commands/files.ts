import type { Command } from '../cli/command';
import { registryOption } from '../cli/command';
import { CliError, ExitCode } from '../cli/errors';

export const filesCommand: Command = {
  name: 'files',
  summary: "list a peer's shared files",
  help: `Usage: p2pshare files PEER [--registry URL] [--json]`,
  options: { ...registryOption },
  positionals: [0, 2],
  async run() {
    throw new CliError(ExitCode.failed, 'files: not built yet');
  },
};
