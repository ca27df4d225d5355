import type { Command } from '../cli/command';
import { registryOption } from '../cli/command';
import { CliError, ExitCode } from '../cli/errors';

export const getCommand: Command = {
  name: 'get',
  summary: 'fetch a file from a peer, verified',
  help: `Usage: p2pshare get PEER FILE [--via auto|tcp|udp] [--downloads DIR] [--registry URL] [--json]`,
  options: { ...registryOption },
  positionals: [0, 2],
  async run() {
    throw new CliError(ExitCode.failed, 'get: not built yet');
  },
};
