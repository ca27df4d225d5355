import type { Command } from '../cli/command';
import { registryOption } from '../cli/command';
import { CliError, ExitCode } from '../cli/errors';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run registry + two peers locally and fetch a text file and a JPEG',
  help: `Usage: p2pshare demo`,
  options: { ...registryOption },
  positionals: [0, 2],
  async run() {
    throw new CliError(ExitCode.failed, 'demo: not built yet');
  },
};
