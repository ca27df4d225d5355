// Requester side of the control protocol: requests with IDs over a connection to the owner,
// retried with back-off; an owner that never answers is reported OFFLINE within about 4 s.
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { P2pError } from '../core/errors';
import type { Connection } from '../net/connection';
import type { Endpoint } from '../net/endpoint';
import { FrameType, type Frame } from '../wire/frame';
import {
  decodeGetResponse,
  decodeListResponse,
  encodeGetRequest,
  encodeListRequest,
  LIST_END,
  ListStatus,
  type GetRequest,
  type GetResponse,
  type ListEntry,
  type ListResponse,
} from '../wire/control';

/** Wait after each try: 3 tries, 3.5 s in all. */
export const RETRY_DELAYS_MS = [500, 1000, 2000];
/** A listing stops past this many entries: what an owner may share (README "Limits of a peer"). */
export const MAX_LIST_ENTRIES = 100_000;
/** LIST pages asked for at once, after the first. */
export const LIST_PAGES_IN_FLIGHT = 8;
/**
 * How long entry() waits for the owner to hash a file it has no digest for yet: a base, and as
 * long again as reading it at 16 MiB/s would take (the owner answers meanwhile, so it is alive).
 */
const DIGEST_WAIT_BASE_MS = 30_000;
const DIGEST_WAIT_BYTES_PER_MS = 16 * 1024;
/** Between two asks for a digest still being computed (the owner waits up to 300 ms itself). */
const DIGEST_POLL_MS = 200;

interface Pending {
  conn: Connection;
  resolve: (f: Frame) => void;
}

export class ControlClient {
  private readonly pending = new Map<number, Pending>();
  /** LIST requests sent (retries of one request not counted). */
  listRequests = 0;

  constructor(private readonly endpoint: Endpoint) {
    const onAnswer = (f: Frame, conn: Connection) => {
      const p = this.pending.get(f.id);
      // Only the connection we asked on may answer (a spoofed or stray answer is dropped).
      if (!p || p.conn !== conn) return endpoint.reject();
      this.pending.delete(f.id);
      p.resolve(f);
    };
    endpoint.on(FrameType.listResponse, onAnswer);
    endpoint.on(FrameType.getResponse, onAnswer);
  }

  /** Sends a request and waits for its answer, retrying; `signal` ends the wait at once (ABORTED). */
  async request(type: number, body: Buffer, conn: Connection, peerName: string, signal?: AbortSignal): Promise<Frame> {
    const id = randomInt(1, 0xffffffff);
    const answered = new Promise<Frame>((resolve) => this.pending.set(id, { conn, resolve }));
    const release = conn.hold();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<'aborted'>((resolve) => {
      onAbort = () => resolve('aborted');
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      for (const delay of RETRY_DELAYS_MS) {
        conn.send(type, id, body);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), delay)));
        const frame = await Promise.race([answered, timeout, aborted]);
        clearTimeout(timer);
        if (frame === 'aborted') throw new P2pError('ABORTED', `interrupted while waiting for '${peerName}'`);
        if (frame) return frame;
      }
    } finally {
      this.pending.delete(id);
      signal?.removeEventListener('abort', onAbort!);
      release();
    }
    throw new P2pError('OFFLINE', `peer '${peerName}' is offline (no answer from ${conn.remote.address}:${conn.remote.port})`);
  }

  /** One LIST page: the entries from `start` among those whose names start with `prefix`. */
  async listPage(conn: Connection, peerName: string, o: { prefix?: string; start?: number; exact?: boolean; signal?: AbortSignal } = {}): Promise<ListResponse> {
    const start = o.start ?? 0;
    this.listRequests++;
    const f = await this.request(FrameType.listRequest, encodeListRequest(start, o), conn, peerName, o.signal);
    const res = decodeListResponse(f.body);
    if (!res) throw new P2pError('FAILED', `peer '${peerName}' sent a malformed file list`);
    if (res.status === ListStatus.forbidden) throw forbidden(peerName);
    if (res.status !== ListStatus.ok) throw new P2pError('FAILED', `peer '${peerName}' refused to list its files (status ${res.status})`);
    // An owner answering a prefix (or one name) with names outside it ignores the request's layout.
    if (o.prefix && res.entries.some((e) => (o.exact ? e.name !== o.prefix : !e.name.startsWith(o.prefix!)))) {
      throw new P2pError('FAILED', `peer '${peerName}' answered a listing of '${o.prefix}' with other names (an older version?)`);
    }
    return res;
  }

  /**
   * Every entry (or those whose names start with `o.prefix`, e.g. 'pictures/2024/'), in the
   * owner's order. The first page says how many there are and how many fit a page; the others are
   * then asked for LIST_PAGES_IN_FLIGHT at a time (a listing of 100,000 names is about 5,000 pages
   * on a network: one after another, 5,000 round trips). Where a page holds fewer entries than
   * the guess, the gap is asked for next. Entries the owner has not hashed yet have sha256 ''
   * (fetch them through entry()). `o.onPage` hears the entries in order, a run at a time.
   */
  async list(conn: Connection, peerName: string, o: { prefix?: string; onPage?: (entries: ListEntry[]) => void } = {}): Promise<ListEntry[]> {
    const prefix = o.prefix ? { prefix: o.prefix } : {};
    const first = await this.listPage(conn, peerName, { start: 0, ...prefix });
    const total = first.total;
    if (total > MAX_LIST_ENTRIES || first.entries.length > MAX_LIST_ENTRIES) {
      throw tooManyEntries(peerName);
    }
    const got: Array<ListEntry | undefined> = [...first.entries];
    let delivered = 0;
    const deliver = () => {
      let end = delivered;
      while (end < got.length && got[end] !== undefined) end++;
      if (end > delivered) o.onPage?.(got.slice(delivered, end) as ListEntry[]);
      delivered = end;
    };
    deliver();
    // An owner that lists nothing more, or does not know the total (an older one): page by page.
    let end = first.nextIndex === LIST_END || first.entries.length === 0 ? got.length : Math.max(total, got.length);
    const perPage = Math.max(1, first.entries.length);
    /** Starts asked for and not answered, with the index their page should reach. */
    const asking = new Map<number, number>();
    let failure: unknown;
    const covered = (i: number) => got[i] !== undefined || [...asking].some(([from, to]) => i >= from && i < to);
    await new Promise<void>((resolve) => {
      const next = () => {
        if (failure !== undefined) return asking.size === 0 && resolve();
        // Ask for the first indices no page holds or is asking for, up to the window.
        for (let i = delivered; i < end && asking.size < LIST_PAGES_IN_FLIGHT; i++) {
          if (covered(i)) continue;
          ask(i);
          i += perPage - 1;
        }
        if (asking.size === 0) resolve();
      };
      const ask = (start: number) => {
        asking.set(start, Math.min(end, start + perPage));
        this.listPage(conn, peerName, { start, ...prefix }).then(
          (res) => {
            asking.delete(start);
            if (start + res.entries.length > MAX_LIST_ENTRIES) {
              failure ??= tooManyEntries(peerName);
              return next();
            }
            res.entries.forEach((e, k) => (got[start + k] = e));
            // The end of the list came sooner than its total said (or an owner lists nothing here).
            if (res.nextIndex === LIST_END || res.entries.length === 0) end = Math.min(end, start + res.entries.length);
            deliver();
            next();
          },
          (err: unknown) => {
            asking.delete(start);
            failure ??= err;
            next();
          },
        );
      };
      next();
    });
    if (failure !== undefined) throw failure;
    return got.slice(0, delivered) as ListEntry[];
  }

  /**
   * The entry named `name` with its digest, or undefined when the owner does not share it. One
   * the owner has not hashed yet it hashes on being asked; this waits for that (bounded by the
   * file's size) rather than fetch a file without knowing what its bytes must hash to.
   */
  async entry(conn: Connection, peerName: string, name: string, o: { signal?: AbortSignal } = {}): Promise<ListEntry | undefined> {
    const started = Date.now();
    for (;;) {
      const res = await this.listPage(conn, peerName, { prefix: name, exact: true, ...(o.signal ? { signal: o.signal } : {}) });
      const e = res.entries[0];
      if (!e) return undefined;
      if (e.sha256 !== '') return e;
      if (Date.now() - started > DIGEST_WAIT_BASE_MS + e.size / DIGEST_WAIT_BYTES_PER_MS) {
        throw new P2pError('FAILED', `peer '${peerName}' is still hashing ${e.name} (or cannot read it); try again later`);
      }
      await sleep(DIGEST_POLL_MS, undefined, o.signal ? { signal: o.signal } : {}).catch(() => {
        throw new P2pError('ABORTED', `interrupted while ${peerName} was hashing ${e.name}`);
      });
    }
  }

  async get(conn: Connection, peerName: string, req: GetRequest, signal?: AbortSignal): Promise<GetResponse> {
    const f = await this.request(FrameType.getRequest, encodeGetRequest(req), conn, peerName, signal);
    const res = decodeGetResponse(f.body);
    if (!res) throw new P2pError('FAILED', `peer '${peerName}' sent a malformed answer`);
    return res;
  }

  close(): void {
    this.endpoint.off(FrameType.listResponse);
    this.endpoint.off(FrameType.getResponse);
  }
}

/** The owner's --allow list does not hold this requester's key (a LIST or GET refused so). */
export function forbidden(peer: string): P2pError {
  return new P2pError('FORBIDDEN', `peer '${peer}' does not serve you: your key is not on its --allow list (show yours with p2pshare id)`);
}

/** A listing longer than MAX_LIST_ENTRIES: refused whole, with what to do instead. */
function tooManyEntries(peerName: string): P2pError {
  return new P2pError('FAILED', `peer '${peerName}' lists more than ${MAX_LIST_ENTRIES} files; list a folder of it (files PEER PREFIX)`);
}
