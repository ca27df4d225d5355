// Reliable UDP transfers on one Endpoint (PROTOCOL.md section 6): routes DATA, ACK, DONE and
// ABORT frames to the session they belong to, by connection (the exact remote address) and
// session ID; anything else (stale sessions, strangers, malformed bodies) is dropped and counted.
import { onAbortSignal } from '../../core/async';
import { formatBytes } from '../../core/bytes';
import type { Connection } from '../../net/connection';
import type { Endpoint } from '../../net/endpoint';
import { SessionTable } from '../../net/sessions';
import { FrameType, type Frame } from '../../wire/frame';
import { AbortReason, abortReasonText, encodeAbort, decodeAbort, decodeAck, decodeData, decodeDone, encodeDone, DATA_HEADER_BYTES, MIN_PAYLOAD_BYTES } from '../../wire/transfer';
import { Receiver, type ReceiveResult } from './receiver';
import { Sender, type SendResult } from './sender';

export type { ReceiveResult, SendResult };

export const DEFAULT_MAX_PAYLOAD = 1200;
export const DEFAULT_IDLE_TIMEOUT_MS = 15_000;
const SOCKET_CLOSED = 'transfer stopped: the UDP socket was closed';
/** A send whose ACKs deliver no new chunk for this long fails (PROTOCOL.md 6.8). */
export const DEFAULT_PROGRESS_TIMEOUT_MS = 30_000;
/** A finished receive answers late DATA with DONE for this long (its DONEs may have been lost). */
const LINGER_MS = 10_000;
const MAX_LINGERING = 1024;
const DONE_REPLY_SPACING_MS = 20;

export interface SendRequest {
  /** The requester's connection: DATA goes there, ACK/DONE/ABORT count only from there. */
  conn: Connection;
  sessionId: number;
  path: string;
  offset: number;
  size: number;
  maxPayload: number;
  signal?: AbortSignal;
}

export interface ReceiveRequest {
  /** The owner's connection: DATA and ABORT count only from there. */
  conn: Connection;
  sessionId: number;
  partPath: string;
  offset: number;
  size: number;
  /** The max payload this requester puts in its GET_REQUEST (default DEFAULT_MAX_PAYLOAD). */
  maxPayload?: number;
  onProgress?: (bytesDone: number) => void;
  signal?: AbortSignal;
  /** Hash the file as it arrives (from offset 0): the result then carries its SHA-256. */
  hash?: boolean;
  /** Told each time the .part's hole-free prefix on disk grows: its bytes from the file's start. */
  onPrefixOnDisk?: (bytes: number) => void;
}

interface Lingering {
  until: number;
  lastDone: number;
}

/**
 * The chunk size an owner uses for a GET_REQUEST's max payload on a connection whose bodies hold
 * `maxBody` bytes (PROTOCOL.md 6.1; 1448 on a version-1 connection), or null when it is unusable.
 */
export function chunkBytesFor(maxPayload: number, maxBody: number): number | null {
  if (!Number.isInteger(maxPayload) || maxPayload < MIN_PAYLOAD_BYTES) return null;
  return Math.min(maxPayload, maxBody - DATA_HEADER_BYTES);
}

export class UdpTransfers {
  private readonly sends = new SessionTable<Sender>();
  private readonly receives = new SessionTable<Receiver>();
  private readonly lingering = new SessionTable<Lingering>();
  private readonly idleTimeoutMs: number;
  private readonly progressTimeoutMs: number;

  constructor(
    private readonly endpoint: Endpoint,
    options: { idleTimeoutMs?: number; progressTimeoutMs?: number } = {},
  ) {
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.progressTimeoutMs = options.progressTimeoutMs ?? DEFAULT_PROGRESS_TIMEOUT_MS;
    endpoint.on(FrameType.data, (f, conn) => this.onData(f, conn));
    endpoint.on(FrameType.ack, (f, conn) => this.onAck(f, conn));
    endpoint.on(FrameType.done, (f, conn) => this.onDone(f, conn));
    endpoint.on(FrameType.abort, (f, conn) => this.onAbort(f, conn));
    // The socket is gone (peer shutting down, exchange over): end every session now rather than
    // let their timers run to the idle timeout.
    endpoint.onClose(() => this.cancelAll(SOCKET_CLOSED));
  }

  get activeSends(): number {
    return this.sends.size;
  }

  get activeReceives(): number {
    return this.receives.size;
  }

  send(o: SendRequest): Promise<SendResult> {
    const { conn } = o;
    const chunkBytes = chunkBytesFor(o.maxPayload, conn.maxDataBody);
    const refusal =
      chunkBytes === null
        ? `max payload ${o.maxPayload} is too small (at least ${MIN_PAYLOAD_BYTES} bytes)`
        : !validRange(o.offset, o.size)
          ? `bad byte range ${o.offset}-${o.size}`
          : sizeRefusal(o.offset, o.size, chunkBytes);
    if (refusal || chunkBytes === null) {
      // The GET was already answered ok: tell the requester now rather than let it time out.
      conn.send(FrameType.abort, o.sessionId, encodeAbort(AbortReason.badRequest));
      return Promise.reject(new Error(refusal));
    }
    const id = o.sessionId >>> 0;
    if (this.sends.get(conn, id)) return Promise.reject(new Error(`session ${o.sessionId} is already sending`));
    const release = conn.hold();
    let sender: Sender;
    try {
      sender = new Sender(conn, { sessionId: id, path: o.path, offset: o.offset, size: o.size, chunkBytes, idleTimeoutMs: this.idleTimeoutMs, progressTimeoutMs: this.progressTimeoutMs }, () => {
        release();
        if (this.sends.get(conn, id) === sender) this.sends.delete(conn, id);
      });
    } catch (err) {
      release();
      conn.send(FrameType.abort, o.sessionId, encodeAbort(AbortReason.ioError));
      return Promise.reject(untracked(err, o.offset, o.size, chunkBytes));
    }
    this.sends.set(conn, id, sender);
    onAbortSignal(o.signal, () => sender.cancel('transfer aborted'), sender.promise);
    conn.onForgotten(() => sender.cancel(this.stopReason()));
    return sender.promise;
  }

  receive(o: ReceiveRequest): Promise<ReceiveResult> {
    const { conn } = o;
    const chunkBytes = chunkBytesFor(o.maxPayload ?? DEFAULT_MAX_PAYLOAD, conn.maxBody);
    if (chunkBytes === null) return Promise.reject(new Error(`max payload ${o.maxPayload} is too small`));
    if (!validRange(o.offset, o.size)) return Promise.reject(new Error(`bad byte range ${o.offset}-${o.size}`));
    const tooLarge = sizeRefusal(o.offset, o.size, chunkBytes);
    if (tooLarge) return Promise.reject(new Error(tooLarge));
    const id = o.sessionId >>> 0;
    if (this.receives.get(conn, id)) return Promise.reject(new Error(`session ${id} is already receiving`));
    this.lingering.delete(conn, id);
    const release = conn.hold();
    let receiver: Receiver;
    try {
      receiver = new Receiver(
        conn,
        { sessionId: id, partPath: o.partPath, offset: o.offset, size: o.size, chunkBytes, idleTimeoutMs: this.idleTimeoutMs, ...(o.onProgress ? { onProgress: o.onProgress } : {}), ...(o.hash ? { hash: true } : {}), ...(o.onPrefixOnDisk ? { onPrefixOnDisk: o.onPrefixOnDisk } : {}) },
        () => {
          release();
          if (this.receives.get(conn, id) !== receiver) return;
          this.receives.delete(conn, id);
          if (receiver.finished) this.linger(conn, id);
        },
      );
    } catch (err) {
      release();
      return Promise.reject(untracked(err, o.offset, o.size, chunkBytes));
    }
    this.receives.set(conn, id, receiver);
    onAbortSignal(o.signal, () => receiver.cancel('transfer aborted'), receiver.promise);
    conn.onForgotten(() => receiver.cancel(this.stopReason()));
    return receiver.promise;
  }

  /**
   * Why a session's connection was forgotten: the endpoint closes its socket by forgetting every
   * connection first, and that, not the connection, is what the caller should hear about.
   */
  private stopReason(): string {
    return this.endpoint.closed ? SOCKET_CLOSED : 'transfer stopped: the connection was closed';
  }

  /** Ends every session now, telling each remote (ABORT) while the socket is still open. */
  cancelAll(message: string): void {
    for (const s of [...this.sends.values()]) s.cancel(message);
    for (const r of [...this.receives.values()]) r.cancel(message);
  }

  /** Ends the sessions of this ID now (send or receive, on any connection); their promises reject. */
  cancel(sessionId: number): void {
    const id = sessionId >>> 0;
    for (const [, sid, r] of [...this.receives.entries()]) if (sid === id) r.cancel('transfer cancelled');
    for (const [, sid, s] of [...this.sends.entries()]) if (sid === id) s.cancel('transfer cancelled');
  }

  private onData(f: Frame, conn: Connection): void {
    const p = decodeData(f.body);
    const r = this.receives.get(conn, f.id);
    if (p && r) {
      if (!r.onData(p)) this.endpoint.reject();
      return;
    }
    const l = this.lingering.get(conn, f.id);
    const now = performance.now();
    if (p && l && now < l.until) {
      // The sender has not heard our DONE: say it again, at a bounded rate.
      if (now - l.lastDone >= DONE_REPLY_SPACING_MS) {
        l.lastDone = now;
        conn.send(FrameType.done, f.id, encodeDone());
      }
      return;
    }
    this.endpoint.reject(); // malformed, stale, or not from the peer this session talks to
  }

  private onAck(f: Frame, conn: Connection): void {
    const a = decodeAck(f.body);
    const s = this.sends.get(conn, f.id);
    if (a && s) s.onAck(a);
    else this.endpoint.reject();
  }

  private onDone(f: Frame, conn: Connection): void {
    const s = this.sends.get(conn, f.id);
    if (decodeDone(f.body) && s) s.onDone();
    else this.endpoint.reject();
  }

  private onAbort(f: Frame, conn: Connection): void {
    const reason = decodeAbort(f.body);
    if (reason === null) return this.endpoint.reject();
    const s = this.sends.get(conn, f.id);
    const r = this.receives.get(conn, f.id);
    if (s) s.onAbort(abortReasonText(reason));
    else if (r) r.onAbort(abortReasonText(reason));
    else this.endpoint.reject();
  }

  private linger(conn: Connection, id: number): void {
    const now = performance.now();
    for (const [c, i, l] of this.lingering.entries()) if (l.until < now || this.lingering.size >= MAX_LINGERING) this.lingering.delete(c, i);
    this.lingering.set(conn, id, { until: now + LINGER_MS, lastDone: now });
  }
}

/** Chunks a transfer may have: N MUST be below 2^32 (PROTOCOL.md 6.1). */
const MAX_CHUNKS = 2 ** 32 - 1;

/** Why bytes [offset, size) cannot travel in chunks of `chunkBytes`, or undefined. */
function sizeRefusal(offset: number, size: number, chunkBytes: number): string | undefined {
  const chunks = Math.ceil((size - offset) / chunkBytes);
  if (chunks <= MAX_CHUNKS) return undefined;
  return `${formatBytes(size - offset)} is too large for a UDP transfer: ${chunks} chunks of ${chunkBytes} bytes, at most ${MAX_CHUNKS} (TCP has no such limit)`;
}

/**
 * A session's per-chunk arrays could not be allocated (RangeError "Invalid typed array length",
 * or out of memory): said in words, not in JavaScript's.
 */
function untracked(err: unknown, offset: number, size: number, chunkBytes: number): Error {
  const chunks = Math.ceil((size - offset) / chunkBytes);
  return new Error(`cannot keep track of ${chunks} chunks in memory (${formatBytes(size - offset)} over UDP); TCP has no such limit`, { cause: err });
}

function validRange(offset: number, size: number): boolean {
  return Number.isSafeInteger(offset) && Number.isSafeInteger(size) && offset >= 0 && offset <= size;
}
