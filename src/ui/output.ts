// Terminal output rules of SPEC section 2: colour only on a TTY and never with NO_COLOR;
// progress only on a TTY and never under CI.
import pc from 'picocolors';

type Stream = NodeJS.WriteStream;

export function colorEnabled(stream: Stream = process.stdout): boolean {
  return stream.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
}

export function colors(stream: Stream = process.stdout) {
  return pc.createColors(colorEnabled(stream));
}

/** Progress bars and other redrawn lines: stderr must be a terminal, and not under CI. */
export function progressEnabled(): boolean {
  return process.stderr.isTTY === true && !process.env.CI;
}

/** One readable error line on stderr. */
export function printError(message: string): void {
  const c = colors(process.stderr);
  process.stderr.write(`${c.red('error:')} ${message}\n`);
}
