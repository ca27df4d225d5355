// The one entry point: dispatches `p2pshare <command>` to src/commands/*, maps errors to exit codes.
// Only what every run needs is imported here; a command's module (and with it ioredis, prompts,
// the peer stack) is loaded when that command runs, so `--version` starts as fast as Node does
// (README "Start-up"). esbuild keeps each import() below lazy in the CommonJS bundle.
import { version } from '../package.json';
import type { CliContext, Command } from './commands/args';
import { P2pError, userMessage, type ErrorCode } from './core/errors';
import { printError } from './ui/output';

/** Exit codes (README "Exit codes"): the one place an error code becomes one. */
const EXIT_CODES: Record<ErrorCode, number> = {
  FAILED: 1,
  TIMEOUT: 1,
  ABORTED: 1,
  INTEGRITY: 1,
  BUSY: 1,
  INCOMPATIBLE_VERSION: 1,
  HANDSHAKE_FAILED: 1,
  USAGE: 2,
  NAME_TAKEN: 3,
  UNKNOWN_PEER: 3,
  OFFLINE: 3,
  NO_SUCH_FILE: 4,
  FORBIDDEN: 4,
  REGISTRY_UNAVAILABLE: 5,
  KEY_MISMATCH: 6,
};
/** Any other error: a bug or an unexpected failure. */
const EXIT_UNEXPECTED = 1;

// Before anything uses libuv's thread pool (it is sized once, at its first use): a set of small
// files keeps dozens of opens, writes and fsyncs under way at once, and each fsync holds a
// thread for the disk's time; with Node's default of 4, four slow fsyncs stall every other file
// operation. More threads than 16 only cost system time here (BENCHMARKS.md, rows 8a/8b).
process.env.UV_THREADPOOL_SIZE ??= '16';

const cli: CliContext = {
  exit: (code) => process.exit(EXIT_CODES[code]),
};

/** Every command, in `--help` order, by name: each loads its module on first use. */
const commands: Record<string, () => Promise<Command>> = {
  'serve-registry': async () => (await import('./commands/serve-registry')).serveRegistryCommand,
  peer: async () => (await import('./commands/peer')).peerCommand,
  peers: async () => (await import('./commands/peers')).peersCommand,
  files: async () => (await import('./commands/files')).filesCommand,
  get: async () => (await import('./commands/get')).getCommand,
  id: async () => (await import('./commands/id')).idCommand,
  demo: async () => (await import('./commands/demo')).demoCommand,
};

async function mainHelp(): Promise<string> {
  const all = await Promise.all(Object.values(commands).map((load) => load()));
  const width = Math.max(...all.map((c) => c.name.length));
  return [
    `p2pshare ${version} — peer-to-peer file sharing, verified end to end`,
    '',
    'Usage: p2pshare <command> [options]',
    '',
    'Commands:',
    ...all.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options: --help, --version. Run `p2pshare <command> --help` for a command\'s options.',
    'Exit codes: 0 ok, 1 failed, 2 bad usage, 3 unknown/offline peer or name taken,',
    '            4 no such file or refused (--allow), 5 registry unreachable, 6 peer key mismatch.',
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(await mainHelp());
    return first === undefined ? EXIT_CODES.USAGE : 0;
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const load = Object.hasOwn(commands, first) ? commands[first] : undefined;
  if (!load) throw new P2pError('USAGE', `unknown command '${first}' (see p2pshare --help)`);
  const [cmd, { parseCommandArgs }] = await Promise.all([load(), import('./commands/args')]);
  const args = parseCommandArgs(cmd, rest);
  if (args.help) {
    process.stdout.write(cmd.help.endsWith('\n') ? cmd.help : `${cmd.help}\n`);
    return 0;
  }
  await cmd.run(args, cli);
  return 0;
}

const debug = process.argv.includes('--debug');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof P2pError) {
      printError(err.message);
      if (debug && err.cause) console.error(err.cause);
      process.exitCode = EXIT_CODES[err.code];
    } else {
      printError(userMessage(err));
      if (debug) console.error(err);
      process.exitCode = EXIT_UNEXPECTED;
    }
  },
);
