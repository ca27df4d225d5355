// The one error type the library throws for an expected failure: a one-line message for the user
// and a code saying what kind of failure it is. Only src/cli.ts turns a code into an exit code
// (README "Exit codes"); everywhere else a caller decides by the code, never by the message.

export type ErrorCode =
  | 'USAGE' // bad arguments or options
  | 'FAILED' // the operation failed (no more specific code)
  | 'TIMEOUT'
  | 'ABORTED' // stopped by the user (Ctrl+C) or by the caller's signal
  | 'INTEGRITY' // a fetched file's SHA-256 is not the owner's
  | 'BUSY' // the owner serves as many transfers as it allows
  | 'INCOMPATIBLE_VERSION' // the other side speaks another protocol version
  | 'HANDSHAKE_FAILED'
  | 'NAME_TAKEN' // the registry has the name for another peer
  | 'UNKNOWN_PEER' // the registry knows no peer of that name
  | 'OFFLINE' // a registered peer does not answer
  | 'NO_SUCH_FILE'
  | 'FORBIDDEN'
  | 'REGISTRY_UNAVAILABLE' // unreachable or unhealthy
  | 'KEY_MISMATCH'; // the peer's key is not the one known for its name

export class P2pError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'P2pError';
  }
}

/** JavaScript's own errors: a bug (or a limit of the runtime), never a message for a user. */
const INTERNAL = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError];

/**
 * The message of `err` as a user may read it: JavaScript's own errors ("Invalid typed array
 * length", "Cannot read properties of undefined") mean nothing to a user and become one plain
 * sentence; --debug still shows them with their stack.
 */
export function userMessage(err: unknown): string {
  if (INTERNAL.some((E) => err instanceof E)) return 'an internal error (run again with --debug for the details)';
  return err instanceof Error ? err.message : String(err);
}
