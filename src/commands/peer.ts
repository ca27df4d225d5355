import type { Command } from '../cli/command';
import { registryOption } from '../cli/command';
import { CliError, ExitCode } from '../cli/errors';

export const peerCommand: Command = {
  name: 'peer',
  summary: 'register a name, share files, fetch from others',
  help: `Usage: p2pshare peer --name NAME [--registry URL] [--share PATH]... [--downloads DIR] [--port N] [--advertise HOST] [--no-interactive]`,
  options: { ...registryOption },
  positionals: [0, 2],
  async run() {
    throw new CliError(ExitCode.failed, 'peer: not built yet');
  },
};
