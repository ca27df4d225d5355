// The one entry point: dispatches `p2pshare <command>` to src/commands/*, maps errors to exit codes.
import pkg from '../package.json';
import { parseCommandArgs, type Command } from './cli/command';
import { CliError, ExitCode, UsageError } from './cli/errors';
import { printError } from './ui/output';
import { serveRegistryCommand } from './commands/serve-registry';
import { peerCommand } from './commands/peer';
import { peersCommand } from './commands/peers';
import { filesCommand } from './commands/files';
import { getCommand } from './commands/get';
import { demoCommand } from './commands/demo';

const commands: Command[] = [
  serveRegistryCommand,
  peerCommand,
  peersCommand,
  filesCommand,
  getCommand,
  demoCommand,
];

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `p2pshare ${pkg.version} — peer-to-peer file sharing, verified end to end`,
    '',
    'Usage: p2pshare <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options: --help, --version. Run `p2pshare <command> --help` for a command\'s options.',
    'Exit codes: 0 ok, 1 failed, 2 bad usage, 3 unknown/offline peer or name taken,',
    '            4 no such file, 5 registry unreachable.',
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(mainHelp());
    return first === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`${pkg.version}\n`);
    return ExitCode.ok;
  }
  const cmd = commands.find((c) => c.name === first);
  if (!cmd) throw new UsageError(`unknown command '${first}' (see p2pshare --help)`);
  const args = parseCommandArgs(cmd, rest);
  if (args.help) {
    process.stdout.write(cmd.help.endsWith('\n') ? cmd.help : `${cmd.help}\n`);
    return ExitCode.ok;
  }
  return cmd.run(args);
}

const debug = process.argv.includes('--debug');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      printError(err.message);
      if (debug && err.cause) console.error(err.cause);
      process.exitCode = err.exitCode;
    } else {
      printError(err instanceof Error ? err.message : String(err));
      if (debug) console.error(err);
      process.exitCode = ExitCode.failed;
    }
  },
);
