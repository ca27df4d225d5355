// A terminal-like stream for UI tests: records what was written, with isTTY and columns set.
import { Writable } from 'node:stream';

export interface FakeTerminal extends NodeJS.WriteStream {
  chunks: string[];
  readonly text: string;
}

export function fakeTerminal(o: { isTTY?: boolean; columns?: number } = {}): FakeTerminal {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  }) as unknown as FakeTerminal & { isTTY?: boolean; columns?: number };
  if (o.isTTY !== false) w.isTTY = true;
  if (o.columns !== undefined) w.columns = o.columns;
  Object.defineProperty(w, 'chunks', { value: chunks });
  Object.defineProperty(w, 'text', { get: () => chunks.join('') });
  return w;
}

/** Strips SGR colour sequences. */
export function plain(s: string): string {
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}

/** Runs fn with some environment variables set (string) or removed (undefined), then restores them. */
export async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T | Promise<T>): Promise<T> {
  const saved = new Map(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
