// Small waiting helpers used across layers: abort signals, and sockets/servers starting to listen.
import type { EventEmitter } from 'node:events';

/** Runs `abort` when `signal` fires before `done` settles; one long-lived signal may serve many sessions. */
export function onAbortSignal(signal: AbortSignal | undefined, abort: () => void, done: Promise<unknown>): void {
  if (!signal) return;
  if (signal.aborted) return void setImmediate(abort);
  signal.addEventListener('abort', abort, { once: true });
  const forget = () => signal.removeEventListener('abort', abort);
  done.then(forget, forget);
}

/** Resolves like `p`, or rejects with the signal's reason as soon as it aborts (p then winds down unobserved). */
export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Starts `target` (a server's listen, a socket's bind) and resolves once it listens; rejects
 * with the first error instead (EADDRINUSE, ...), which is then no longer listened for.
 */
export function listening(target: EventEmitter, start: (onListening: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    target.once('error', reject);
    start(() => {
      target.off('error', reject);
      resolve();
    });
  });
}

/** At most `limit` holders at once; the others wait their turn in order. */
export class Semaphore {
  private held = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  /** Resolves with this holder's release (idempotent) once a place is free. */
  async acquire(): Promise<() => void> {
    if (this.held >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next(); // the place passes straight on
      else this.held--;
    };
  }
}

/** `fn` over `items`, at most `limit` at once; results in the order of `items`. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
