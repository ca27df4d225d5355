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
