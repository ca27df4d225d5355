// The SHA-256 of a file being written, computed on another thread as its bytes land: the
// download's own thread decrypts and writes, a worker reads the bytes back from the page cache
// and hashes them. On two cores this takes the hashing (about a sixth of a large TCP download's
// time, BENCHMARKS.md) off the download's path. It also checks what reached the file, not what
// was handed to write().
//
// A worker costs tens of milliseconds to start, so only large files are worth one
// (TRAILING_HASH_MIN_BYTES). When the worker cannot start or fails, digest() hashes the file
// on this thread instead: slower, never wrong.
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { sha256File } from './hash';
import { workerSource } from './worker-source';

/** Set by build.mjs: hash-worker.ts bundled into one script, run with eval. */
declare const P2PSHARE_HASH_WORKER_SOURCE: string | undefined;

/** Files below this size are hashed on their own thread: a worker's start would cost more. */
export const TRAILING_HASH_MIN_BYTES = 16 * 1024 * 1024;
/** advance() tells the worker at most once per this many bytes (digest() tells it the rest). */
const ADVANCE_STEP_BYTES = 8 * 1024 * 1024;
/** digest() gives up on a worker that has answered nothing for this long, and hashes here. */
export const WORKER_STALL_MS = 60_000;

type Reply = { hashed: number } | { sha256: string } | { error: string };

export class TrailingFileHash {
  private worker: Worker | undefined;
  private told = 0;
  private failure: string | undefined;
  /** The worker gave the digest. */
  private hashed = false;
  private lastReply = Date.now();
  private onReply: ((reply: Reply) => void) | undefined;

  constructor(private readonly path: string, private readonly stallMs = WORKER_STALL_MS) {
    try {
      // Required here, not at start: most commands never hash a large download.
      const { Worker: WorkerThread } = require('node:worker_threads') as typeof import('node:worker_threads');
      const embedded = typeof P2PSHARE_HASH_WORKER_SOURCE === 'string' ? P2PSHARE_HASH_WORKER_SOURCE : undefined;
      const worker = new WorkerThread(workerSource(embedded, join(__dirname, 'hash-worker.ts')), { eval: true, workerData: { path } });
      worker.on('message', (reply: Reply) => {
        this.lastReply = Date.now();
        if ('error' in reply) this.fail(reply.error);
        this.onReply?.(reply);
      });
      worker.on('error', (err) => this.fail(err.message));
      worker.on('exit', (code) => this.fail(`the worker stopped (exit ${code})`));
      // A download's process may end while the worker reads: the worker never holds it open.
      worker.unref();
      this.worker = worker;
    } catch (err) {
      this.failure = (err as Error).message;
    }
  }

  /** Bytes [0, bytes) of the file are written and will not change. */
  advance(bytes: number): void {
    if (bytes - this.told < ADVANCE_STEP_BYTES || !this.worker || this.failure !== undefined) return;
    this.told = bytes;
    this.worker.postMessage({ upTo: bytes });
  }

  /**
   * The lower-case hex SHA-256 of the file's first `size` bytes, all written now. From the
   * worker, or (when it failed) read here. Stops the worker.
   */
  async digest(size: number): Promise<string> {
    const fromWorker = await this.workerDigest(size);
    this.hashed = fromWorker !== undefined;
    this.close();
    return fromWorker ?? sha256File(this.path);
  }

  /** Why the worker did not (or will not) give the digest; undefined while it may. */
  get workerFailure(): string | undefined {
    return this.failure;
  }

  /** Stops the worker; a digest() under way then hashes the file here. Idempotent. */
  close(): void {
    const worker = this.worker;
    this.worker = undefined;
    if (!this.hashed) this.fail('closed');
    void worker?.terminate();
  }

  /** The worker's digest, or undefined when it failed, stalled or was closed. */
  private workerDigest(size: number): Promise<string | undefined> {
    const worker = this.worker;
    if (!worker || this.failure !== undefined) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const stall = setInterval(() => {
        if (Date.now() - this.lastReply > this.stallMs) this.fail(`no answer for ${this.stallMs / 1000} s`);
      }, Math.min(1000, this.stallMs));
      this.onReply = (reply) => {
        if ('hashed' in reply) return;
        clearInterval(stall);
        this.onReply = undefined;
        resolve('sha256' in reply ? reply.sha256 : undefined);
      };
      this.lastReply = Date.now();
      worker.postMessage({ upTo: size, end: true });
    });
  }

  private fail(why: string): void {
    if (this.hashed) return; // the worker's exit after its digest is no failure
    this.failure ??= why;
    this.onReply?.({ error: why });
  }
}
