// Exit codes of SPEC section 2, and the one error type that carries them to the top.

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  peerUnavailable: 3, // unknown or offline peer, or name taken
  noSuchFile: 4,
  registryUnavailable: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An expected failure: printed as one line on stderr, then the process exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(ExitCode.usage, message);
    this.name = 'UsageError';
  }
}
