// What every subcommand module exports, and the argument parsing they share.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { P2pError, type ErrorCode } from '../core/errors';
import { defaultIdentityPath, loadOrCreateIdentity, parseFingerprint, type Identity } from '../crypto/identity';
import { parsePeerArg, type SessionOptions } from '../peer/session';
import { RegistryClient } from '../registry/client';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  name: string;
  /** One line for `p2pshare --help`. */
  summary: string;
  /** Full text for `p2pshare NAME --help`. */
  help: string;
  options: OptionSpec;
  /** Allowed positional arguments: [min, max]. */
  positionals?: [number, number];
  /** Resolves once done (exit 0) or throws a P2pError. Long-running commands resolve after SIGINT/SIGTERM. */
  run(args: ParsedArgs, cli: CliContext): Promise<void>;
}

/** What src/cli.ts lends a command. */
export interface CliContext {
  /** Ends the process at once with the exit code of `code`, for when no promise will settle. */
  exit(code: ErrorCode): never;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  debug: boolean;
}

/** Options every command takes. */
export const commonOptions: OptionSpec = {
  help: { type: 'boolean', short: 'h' },
  debug: { type: 'boolean' },
};

export function parseCommandArgs(cmd: Command, argv: string[]): ParsedArgs & { help: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...commonOptions, ...cmd.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    // parseArgs explains some mistakes over several lines; the user gets the first, which says it.
    throw usage(`${cmd.name}: ${(err as Error).message.split('\n')[0]}`);
  }
  const values = parsed.values as ParsedArgs['values'];
  const help = values.help === true;
  const [min, max] = cmd.positionals ?? [0, 0];
  if (!help && (parsed.positionals.length < min || parsed.positionals.length > max)) {
    throw usage(
      parsed.positionals.length < min
        ? `${cmd.name}: missing argument (see p2pshare ${cmd.name} --help)`
        : `${cmd.name}: unexpected argument '${parsed.positionals[max]}'`,
    );
  }
  return { values, positionals: parsed.positionals, debug: values.debug === true, help };
}

/** Helpers that turn option strings into checked values, throwing a USAGE error otherwise. */
export function stringOpt(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function listOpt(args: ParsedArgs, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function boolOpt(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

export function intOpt(args: ParsedArgs, name: string, fallback: number, min: number, max: number): number {
  const raw = stringOpt(args, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw usage(`--${name} must be a whole number, got '${raw}'`);
  const n = Number(raw);
  if (n < min || n > max) throw usage(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** `--registry`, else $P2PSHARE_REGISTRY, else the local default; checked to be an http(s) URL. */
export function registryUrl(args: ParsedArgs): string {
  const raw = stringOpt(args, 'registry') ?? process.env.P2PSHARE_REGISTRY ?? 'http://127.0.0.1:8000';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usage(`--registry: not a URL: '${raw}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usage(`--registry: must be an http:// or https:// URL, got '${raw}'`);
  }
  return url.origin;
}

export const registryOption: OptionSpec = { registry: { type: 'string' } };

/** Every command that talks to peers takes --identity FILE. */
export const identityOption: OptionSpec = { identity: { type: 'string' } };

/** This peer's identity: --identity FILE, else the default file; created on first use (README "Security"). */
export async function identityOf(args: ParsedArgs): Promise<Identity> {
  const path = stringOpt(args, 'identity') ?? defaultIdentityPath(process.env);
  try {
    return await loadOrCreateIdentity(path);
  } catch (err) {
    throw new P2pError('FAILED', (err as Error).message, { cause: err });
  }
}

/** What a session with the owner `PEER[@FINGERPRINT]` needs from the command line. */
export async function sessionOptions(args: ParsedArgs, peerArg: string): Promise<SessionOptions> {
  const { peer, pin } = parsePeerArg(peerArg);
  let fingerprint: string | undefined;
  if (pin !== undefined) {
    fingerprint = parseFingerprint(pin) ?? undefined;
    if (!fingerprint) throw usage(`'${pin}' is not a key fingerprint (24 characters a-z, 2-7; see p2pshare id)`);
  }
  return {
    registry: new RegistryClient(registryUrl(args)),
    peer,
    identity: await identityOf(args),
    ...(fingerprint ? { pin: fingerprint } : {}),
    ...(boolOpt(args, 'accept-new-key') ? { acceptNewKey: true } : {}),
  };
}

/**
 * Prints a long-running command's ready line and resolves at the first SIGINT or SIGTERM after
 * it. The handlers go in before the line goes out: whoever waits for that line may signal at
 * once, before this process runs another statement, and the default action would kill it
 * without its shutdown.
 */
export function readyUntilSignalled(readyLine: string): Promise<void> {
  const signalled = new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  process.stdout.write(`${readyLine}\n`);
  return signalled;
}

/** A USAGE error: bad arguments, exit 2. */
export function usage(message: string): P2pError {
  return new P2pError('USAGE', message);
}
