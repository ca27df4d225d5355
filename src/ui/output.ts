// Terminal output rules (README "Command reference"): colour only on a TTY and never with NO_COLOR;
// progress bars follow their own rule in progress.ts (progressAllowed).
import pc from 'picocolors';
import { printable } from './text';

type Stream = NodeJS.WriteStream;

export function colorEnabled(stream: Stream = process.stdout): boolean {
  return stream.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
}

export function colors(stream: Stream = process.stdout) {
  return pc.createColors(colorEnabled(stream));
}

/** One readable error line on stderr; control characters (say, in a peer's file name) cannot reach the terminal. */
export function printError(message: string): void {
  const c = colors(process.stderr);
  process.stderr.write(`${c.red('error:')} ${printable(message)}\n`);
}
