import type { Command } from '../cli/command';
import { registryOption } from '../cli/command';
import { CliError, ExitCode } from '../cli/errors';

export const serveRegistryCommand: Command = {
  name: 'serve-registry',
  summary: 'run the registry (HTTP rendezvous + STUN)',
  help: `Usage: p2pshare serve-registry [--host 0.0.0.0] [--port 8000] [--redis URL] [--ttl 30] [--stun-port 3478]`,
  options: { ...registryOption },
  positionals: [0, 2],
  async run() {
    throw new CliError(ExitCode.failed, 'serve-registry: not built yet');
  },
};
