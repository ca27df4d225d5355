// Reliable UDP transfers on one Endpoint (PROTOCOL.md section 6): routes DATA, ACK, DONE and
// ABORT frames to the session they belong to, by session ID and the exact remote address;
// anything else (stale sessions, strangers, malformed bodies) is dropped and counted.
import { onAbortSignal } from '../../core/async';
import { FrameType, type Frame } from '../../wire/frame';
import { AbortReason, abortReasonText, encodeAbort, decodeAbort, decodeAck, decodeData, decodeDone, encodeDone, MAX_PAYLOAD_BYTES, MIN_PAYLOAD_BYTES } from '../../wire/transfer';
import { safeSend, type Endpoint, type Remote } from '../../net/endpoint';
import { Receiver, type ReceiveResult } from './receiver';

export type { ReceiveResult };
import { Sender } from './sender';

export const DEFAULT_MAX_PAYLOAD = 1200;
export const DEFAULT_IDLE_TIMEOUT_MS = 15_000;
/** A finished receive answers late DATA with DONE for this long (its DONEs may have been lost). */
const LINGER_MS = 10_000;
const MAX_LINGERING = 1024;
const DONE_REPLY_SPACING_MS = 20;

export interface SendRequest {
  to: Remote;
  sessionId: number;
  path: string;
  offset: number;
  size: number;
  maxPayload: number;
  signal?: AbortSignal;
}

export interface ReceiveRequest {
  from: Remote;
  sessionId: number;
  partPath: string;
  offset: number;
  size: number;
  /** The max payload this requester puts in its GET_REQUEST (default DEFAULT_MAX_PAYLOAD). */
  maxPayload?: number;
  onProgress?: (bytesDone: number) => void;
  signal?: AbortSignal;
}

interface Lingering {
  from: Remote;
  until: number;
  lastDone: number;
}

function sameRemote(a: Remote, b: Remote): boolean {
  return a.port === b.port && a.address === b.address;
}

function sendKey(to: Remote, sessionId: number): string {
  return `${to.address}|${to.port}|${sessionId >>> 0}`;
}

/** The chunk size an owner uses for a GET_REQUEST's max payload, or null when it is unusable. */
export function chunkBytesFor(maxPayload: number): number | null {
  if (!Number.isInteger(maxPayload) || maxPayload < MIN_PAYLOAD_BYTES) return null;
  return Math.min(maxPayload, MAX_PAYLOAD_BYTES);
}

export class UdpTransfers {
  private readonly sends = new Map<string, Sender>();
  private readonly receives = new Map<number, { from: Remote; receiver: Receiver }>();
  private readonly lingering = new Map<number, Lingering>();
  private readonly idleTimeoutMs: number;

  constructor(
    private readonly endpoint: Endpoint,
    options: { idleTimeoutMs?: number } = {},
  ) {
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    endpoint.on(FrameType.data, (f, from) => this.onData(f, from));
    endpoint.on(FrameType.ack, (f, from) => this.onAck(f, from));
    endpoint.on(FrameType.done, (f, from) => this.onDone(f, from));
    endpoint.on(FrameType.abort, (f, from) => this.onAbort(f, from));
    // The socket is gone (peer shutting down, exchange over): end every session now rather than
    // let their timers run to the idle timeout.
    endpoint.socket.once('close', () => {
      for (const s of this.sends.values()) s.cancel('transfer stopped: the UDP socket was closed');
      for (const r of this.receives.values()) r.receiver.cancel('transfer stopped: the UDP socket was closed');
    });
  }

  get activeSends(): number {
    return this.sends.size;
  }

  get activeReceives(): number {
    return this.receives.size;
  }

  send(o: SendRequest): Promise<{ bytes: number; retransmitted: number; seconds: number }> {
    const chunkBytes = chunkBytesFor(o.maxPayload);
    const refusal =
      chunkBytes === null ? `max payload ${o.maxPayload} is too small (at least ${MIN_PAYLOAD_BYTES} bytes)` : !validRange(o.offset, o.size) ? `bad byte range ${o.offset}-${o.size}` : undefined;
    if (refusal || chunkBytes === null) {
      // The GET was already answered ok: tell the requester now rather than let it time out.
      safeSend(this.endpoint, FrameType.abort, o.sessionId, encodeAbort(AbortReason.badRequest), o.to);
      return Promise.reject(new Error(refusal));
    }
    const key = sendKey(o.to, o.sessionId);
    if (this.sends.has(key)) return Promise.reject(new Error(`session ${o.sessionId} is already sending`));
    const sender = new Sender(
      this.endpoint,
      { to: o.to, sessionId: o.sessionId >>> 0, path: o.path, offset: o.offset, size: o.size, chunkBytes, idleTimeoutMs: this.idleTimeoutMs },
      () => {
        if (this.sends.get(key) === sender) this.sends.delete(key);
      },
    );
    this.sends.set(key, sender);
    onAbortSignal(o.signal, () => sender.cancel('transfer aborted'), sender.promise);
    return sender.promise;
  }

  receive(o: ReceiveRequest): Promise<ReceiveResult> {
    const chunkBytes = chunkBytesFor(o.maxPayload ?? DEFAULT_MAX_PAYLOAD);
    if (chunkBytes === null) return Promise.reject(new Error(`max payload ${o.maxPayload} is too small`));
    if (!validRange(o.offset, o.size)) return Promise.reject(new Error(`bad byte range ${o.offset}-${o.size}`));
    const id = o.sessionId >>> 0;
    if (this.receives.has(id)) return Promise.reject(new Error(`session ${id} is already receiving`));
    this.lingering.delete(id);
    const receiver = new Receiver(
      this.endpoint,
      { from: o.from, sessionId: id, partPath: o.partPath, offset: o.offset, size: o.size, chunkBytes, idleTimeoutMs: this.idleTimeoutMs, ...(o.onProgress ? { onProgress: o.onProgress } : {}) },
      () => {
        if (this.receives.get(id)?.receiver !== receiver) return;
        this.receives.delete(id);
        if (receiver.finished) this.linger(id, o.from);
      },
    );
    this.receives.set(id, { from: o.from, receiver });
    onAbortSignal(o.signal, () => receiver.cancel('transfer aborted'), receiver.promise);
    return receiver.promise;
  }

  /** Ends every session now, telling each remote (ABORT) while the socket is still open. */
  cancelAll(message: string): void {
    for (const s of [...this.sends.values()]) s.cancel(message);
    for (const r of [...this.receives.values()]) r.receiver.cancel(message);
  }

  /** Ends a session now (send or receive); its promise rejects. */
  cancel(sessionId: number): void {
    const id = sessionId >>> 0;
    this.receives.get(id)?.receiver.cancel('transfer cancelled');
    for (const [key, sender] of this.sends) if (key.endsWith(`|${id}`)) sender.cancel('transfer cancelled');
  }

  private onData(f: Frame, from: Remote): void {
    const p = decodeData(f.body);
    const r = this.receives.get(f.id);
    if (p && r && sameRemote(r.from, from)) {
      if (!r.receiver.onData(p)) this.endpoint.reject();
      return;
    }
    const l = this.lingering.get(f.id);
    const now = performance.now();
    if (p && l && sameRemote(l.from, from) && now < l.until) {
      // The sender has not heard our DONE: say it again, at a bounded rate.
      if (now - l.lastDone >= DONE_REPLY_SPACING_MS) {
        l.lastDone = now;
        safeSend(this.endpoint, FrameType.done, f.id, encodeDone(), from);
      }
      return;
    }
    this.endpoint.reject(); // malformed, stale, or not from the peer this session talks to
  }

  private onAck(f: Frame, from: Remote): void {
    const a = decodeAck(f.body);
    const s = this.sends.get(sendKey(from, f.id));
    if (a && s) s.onAck(a);
    else this.endpoint.reject();
  }

  private onDone(f: Frame, from: Remote): void {
    const s = this.sends.get(sendKey(from, f.id));
    if (decodeDone(f.body) && s) s.onDone();
    else this.endpoint.reject();
  }

  private onAbort(f: Frame, from: Remote): void {
    const reason = decodeAbort(f.body);
    if (reason === null) return this.endpoint.reject();
    const s = this.sends.get(sendKey(from, f.id));
    const r = this.receives.get(f.id);
    if (s) s.onAbort(abortReasonText(reason));
    else if (r && sameRemote(r.from, from)) r.receiver.onAbort(abortReasonText(reason));
    else this.endpoint.reject();
  }

  private linger(id: number, from: Remote): void {
    const now = performance.now();
    for (const [k, l] of this.lingering) if (l.until < now || this.lingering.size >= MAX_LINGERING) this.lingering.delete(k);
    this.lingering.set(id, { from, until: now + LINGER_MS, lastDone: now });
  }
}

function validRange(offset: number, size: number): boolean {
  return Number.isSafeInteger(offset) && Number.isSafeInteger(size) && offset >= 0 && offset <= size;
}
