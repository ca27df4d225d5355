// Owner side of the control protocol: answers LIST and GET on the connections its handshakes
// made, hands out one-shot TCP tickets for them, starts UDP sends, says "busy" past its transfer
// slots (slots.ts: in all and per requester key) and "forbidden" to a key its allow list does
// not hold.
import type { Connection, Remote, SecureConnection } from '../net/connection';
import type { Endpoint } from '../net/endpoint';
import { ReplayWindow } from '../crypto/replay';
import { SessionTable } from '../net/sessions';
import { Slots, type Slot } from './slots';
import type { BatchTicket, ServedFile, TcpServerHooks, TcpTicket } from '../transfer/tcp-server';
import { chunkBytesFor, DEFAULT_MAX_PAYLOAD } from '../transfer/udp/index';
import { FrameType, MAX_DATAGRAM_BYTES, type Frame } from '../wire/frame';
import { DATA_HEADER_BYTES } from '../wire/transfer';
import {
  decodeGetRequest,
  decodeListRequest,
  encodeGetResponse,
  encodeListRefusal,
  encodeListResponse,
  GetStatus,
  ListStatus,
  type GetRequest,
  type ListEntry,
  type ListSource,
} from '../wire/control';
import type { FileKind } from '../wire/shared-file';

/** A file as the control server offers it: what LIST shows and GET and the transports need. */
export interface OfferedFile extends ServedFile {
  kind: FileKind;
}

/** An entry as listed: `sha256` null while the owner has not hashed it yet (PROTOCOL.md 4.2). */
export type Listed<F extends OfferedFile> = Omit<F, 'sha256'> & { sha256: string | null };

/** The files on offer (peer/share.ts's ShareIndex). */
export interface Offer<F extends OfferedFile> {
  /**
   * Every entry sorted by name (UTF-16 code units, so that a prefix selects one run of it), the
   * same array from call to call: LIST pages index into it rather than copy it.
   */
  list(): readonly Listed<F>[];
  /** The current entry for a name (hashed first if it had no digest or changed), or undefined. */
  lookup(name: string): Promise<F | undefined>;
  /** False when the file changed on disk since the entry was made. */
  isCurrent(file: F): Promise<boolean>;
  /** Hashes the entries of list() in [from, to) that have none yet, now; resolves when done. */
  hashNow?(from: number, to: number): Promise<void>;
}

/** What the owner needs of the UDP transport (src/transfer/udp). */
export interface UdpSender {
  send(o: { conn: Connection; sessionId: number; path: string; offset: number; size: number; maxPayload: number }): Promise<unknown>;
}

export interface FetchEvent {
  from: Remote;
  name: string;
  size: number;
  offset: number;
  via: 'tcp' | 'udp';
  /** A batch (PROTOCOL.md 5.1): this many files were sent, `size` bytes in all, and `name` is ''. */
  files?: number;
  ok: boolean;
  error?: string;
}

/** An unredeemed TCP ticket is dropped, and its slot freed, this long after the GET answer. */
export const TICKET_TTL_MS = 5_000;
/** Transfers and unredeemed tickets one requester key may hold at once (README "Limits of a peer"). */
export const DEFAULT_MAX_PER_REQUESTER = 4;
/**
 * How long a LIST of one name waits for that file's hashing before it answers without a digest:
 * within the requester's first retry interval (500 ms), so the answer never races a retry.
 */
export const EXACT_LIST_WAIT_MS = 300;
/** How long an answered GET is remembered, so that a retry gets the same answer. */
const ANSWER_MEMORY_MS = 60_000;
/** How far below the highest session ID seen a new one may still come (PROTOCOL.md 4.3). */
export const SESSION_ID_WINDOW = 256;
const MAX_REMEMBERED = 4096;

/** A GET admitted (holding a slot; a file unless it is a batch) or refused with a status. */
type Verdict<F> = { status: typeof GetStatus.ok; file?: F; slot: Slot } | { status: GetStatus; file?: undefined; slot?: undefined };

interface PendingTicket<F extends ServedFile> {
  /** The file of a single TCP transfer; none for a batch (its files are asked for on the stream). */
  file?: F;
  offset: number;
  from: Remote;
  slot: Slot;
  timer: NodeJS.Timeout;
}

export class ControlServer<F extends OfferedFile> implements TcpServerHooks<F> {
  /** Transfers running (tickets not counted). */
  active = 0;
  /** Running transfers and unredeemed tickets, per requester key. */
  readonly slots: Slots;
  /** TCP tickets by (requester's connection, session ID), each holding a slot. */
  private readonly tickets = new SessionTable<PendingTicket<F>>();
  /** The session IDs each connection used (a window below its highest): each once, so TCP keys are never reused. */
  private readonly usedSessions = new WeakMap<Connection, ReplayWindow>();
  /** The allow list's verdict per connection (its key does not change). */
  private readonly verdicts = new WeakMap<Connection, Promise<boolean>>();
  /** GET answers by (requester's connection, session ID). */
  private readonly answers = new SessionTable<{ body: Buffer; expires: number }>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  /** LIST requests answered (with entries or a refusal). */
  listsAnswered = 0;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly share: Offer<F>,
    private readonly opts: {
      /** Slots in all: running transfers plus unredeemed TCP tickets. */
      maxTransfers: number;
      /** Slots one requester key may hold (default DEFAULT_MAX_PER_REQUESTER). */
      maxPerRequester?: number;
      /** How long an unredeemed TCP ticket lives (default TICKET_TTL_MS). */
      ticketTtlMs?: number;
      udp?: UdpSender;
      onFetch?: (e: FetchEvent) => void;
      sizes?: (f: F) => { width: number; height: number };
      /** Whether a requester's key may list and fetch (peer --allow); everyone by default. */
      allow?: (peerKey: Buffer) => boolean | Promise<boolean>;
      /** Whether batch GETs are served (PROTOCOL.md 5.1); true by default. False answers them as an older owner does. */
      batch?: boolean;
    },
  ) {
    this.slots = new Slots(opts.maxTransfers, opts.maxPerRequester ?? DEFAULT_MAX_PER_REQUESTER);
    endpoint.on(FrameType.listRequest, (f, conn) => void this.onList(f, conn).catch(() => endpoint.reject()));
    // onGet answers after an await (a re-hash can take seconds): a failure then, such as the
    // socket closed by a shutdown meanwhile, must not become an unhandled rejection (fatal).
    endpoint.on(FrameType.getRequest, (f, conn) => void this.onGet(f, conn).catch(() => endpoint.reject()));
    this.sweeper = setInterval(() => this.sweep(), 5_000).unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const [conn, id] of this.tickets.entries()) this.dropTicket(conn, id);
    this.endpoint.off(FrameType.listRequest);
    this.endpoint.off(FrameType.getRequest);
  }

  /** The connection a TCP hello names by its index (validated ones only). */
  connection(index: number): SecureConnection | undefined {
    return this.endpoint.connection(index);
  }

  /**
   * The TCP server redeems a ticket: once, within 5 s, on the connection that asked. The hello
   * proved its key; the source address is not compared (a NAT may use another one for TCP).
   * The ticket's slot goes with it: the TCP server releases it when the stream ends.
   */
  takeTicket(conn: Connection, sessionId: number): TcpTicket<F> | BatchTicket | undefined {
    const t = this.tickets.get(conn, sessionId);
    if (!t) return undefined;
    this.tickets.delete(conn, sessionId);
    clearTimeout(t.timer);
    t.slot.pin();
    if (!t.file) return { kind: 'batch', from: t.from, release: t.slot.release };
    return { kind: 'file', file: t.file, offset: t.offset, from: t.from, release: t.slot.release };
  }

  /** For a batch on the TCP stream: the current entry for a name, as a GET would find it. */
  lookup(name: string): Promise<F | undefined> {
    return this.share.lookup(name);
  }

  /** Drops an unredeemed ticket and frees its slot (expired, preempted, shutdown). */
  private dropTicket(conn: Connection, sessionId: number): void {
    const t = this.tickets.get(conn, sessionId);
    if (!t) return;
    this.tickets.delete(conn, sessionId);
    clearTimeout(t.timer);
    t.slot.release();
  }

  /** For the TCP server: the file is still the version whose digest the GET answer gave. */
  isCurrent(file: F): Promise<boolean> {
    return this.share.isCurrent(file);
  }

  /** Counts a transfer as running until `done` settles; reports it to onFetch. */
  track(e: Omit<FetchEvent, 'ok'>, done: Promise<unknown>): void {
    this.active++;
    done.then(
      () => this.opts.onFetch?.({ ...e, ok: true }),
      (err: unknown) => this.opts.onFetch?.({ ...e, ok: false, error: err instanceof Error ? err.message : String(err) }),
    ).finally(() => this.active--);
  }

  /** Whether the allow list admits this connection's key (asked once per connection). */
  private allowed(conn: Connection): Promise<boolean> {
    if (!this.opts.allow) return Promise.resolve(true);
    let v = this.verdicts.get(conn);
    if (!v) {
      v = Promise.resolve(this.opts.allow(conn.peerKey)).catch(() => false);
      this.verdicts.set(conn, v);
    }
    return v;
  }

  private async onList(frame: Frame, conn: Connection): Promise<void> {
    const req = decodeListRequest(frame.body);
    if (req === null) return this.endpoint.reject();
    if (!(await this.allowed(conn))) return this.answerList(conn, frame.id, encodeListRefusal(ListStatus.forbidden));
    const all = this.share.list();
    const { from, to } = req.exact ? exactRange(all, req.prefix) : prefixRange(all, req.prefix);
    if (req.exact && to > from && all[from]!.sha256 === null && this.share.hashNow) {
      // Asked for by name: hashed now, not in its turn; answered without a digest if that takes long.
      const release = conn.hold();
      try {
        await Promise.race([this.share.hashNow(from, to), new Promise((r) => setTimeout(r, EXACT_LIST_WAIT_MS).unref())]);
      } finally {
        release();
      }
      if (this.closed) return;
    }
    this.answerList(conn, frame.id, encodeListResponse(this.view(all, from, to), req.start, listBodyLimit(conn)));
  }

  private answerList(conn: Connection, id: number, body: Buffer): void {
    this.listsAnswered++;
    conn.send(FrameType.listResponse, id, body);
  }

  /** Entries [from, to) of `all` as LIST entries, converted one by one as a page reads them. */
  private view(all: readonly Listed<F>[], from: number, to: number): ListSource {
    return {
      length: to - from,
      at: (i: number): ListEntry | undefined => {
        const f = i >= 0 && from + i < to ? all[from + i] : undefined;
        if (!f) return undefined;
        const dims = f.sha256 !== null && this.opts.sizes ? this.opts.sizes(f as F) : { width: 0, height: 0 };
        return { name: f.name, size: f.size, sha256: f.sha256 ?? '', kind: f.kind, ...dims };
      },
    };
  }

  private async onGet(frame: Frame, conn: Connection): Promise<void> {
    const req = decodeGetRequest(frame.body);
    if (!req) {
      this.endpoint.reject();
      conn.send(FrameType.getResponse, frame.id, encodeGetResponse({ status: GetStatus.badRequest, size: 0, sha256: '' }));
      return;
    }
    const remembered = this.answers.get(conn, req.sessionId);
    if (remembered) {
      // Still being judged (a re-hash can take seconds): the first copy's answer is on its way
      // with the same ID, so this retry is dropped rather than answered with an empty body.
      if (remembered.body.length > 0) conn.send(FrameType.getResponse, frame.id, remembered.body);
      return;
    }
    // Each session ID is used once on a connection, so no ticket is ever issued twice for one ID
    // (the TCP keys derive from it, section 5). Within a window below the highest, IDs may come
    // out of order: a requester fetching several files at once sends several GETs at once.
    let used = this.usedSessions.get(conn);
    if (!used) this.usedSessions.set(conn, (used = new ReplayWindow(SESSION_ID_WINDOW)));
    if (!used.accept(req.sessionId)) {
      this.endpoint.reject();
      conn.send(FrameType.getResponse, frame.id, encodeGetResponse({ status: GetStatus.badRequest, size: 0, sha256: '' }));
      return;
    }
    // Reserve the key before the async lookup so a retry arriving meanwhile is not served twice.
    const pending: { body: Buffer; expires: number } = { body: Buffer.alloc(0), expires: Date.now() + ANSWER_MEMORY_MS };
    this.answers.set(conn, req.sessionId, pending);
    const release = conn.hold(); // the answer goes to this connection, however long the judging
    let verdict;
    try {
      verdict = await this.admit(req, conn);
    } finally {
      release();
    }
    if (this.closed) {
      // Shut down meanwhile: no answer, no ticket, no transfer.
      verdict.slot?.release();
      return;
    }
    const file = verdict.file;
    // A batch's answer carries no size or digest: its files are answered on the stream.
    pending.body = encodeGetResponse(file ? { status: GetStatus.ok, size: file.size, sha256: file.sha256 } : { status: verdict.status, size: 0, sha256: '' });
    if (!verdict.slot) this.answers.delete(conn, req.sessionId); // nothing started: a retry may be judged afresh
    if (this.answers.size > MAX_REMEMBERED) this.sweep();
    conn.send(FrameType.getResponse, frame.id, pending.body);
    if (verdict.file && verdict.slot && req.transport === 'udp') {
      const { file, slot } = verdict;
      let done: Promise<unknown>;
      try {
        done = this.opts.udp!.send({ conn, sessionId: req.sessionId, path: file.path, offset: req.offset, size: file.size, maxPayload: req.maxPayload });
      } catch (err) {
        done = Promise.reject(err);
      }
      done.then(slot.release, slot.release);
      this.track({ from: conn.remote, name: file.name, size: file.size, offset: req.offset, via: 'udp' }, done);
    }
  }

  private async admit(req: GetRequest, conn: Connection): Promise<Verdict<F>> {
    // UDP needs a transport here and a max payload it can cut chunks to (PROTOCOL.md 6.1).
    if (req.transport === 'udp' && (!this.opts.udp || chunkBytesFor(req.maxPayload, conn.maxBody) === null)) return { status: GetStatus.badRequest };
    if (req.transport === 'batch' && this.opts.batch === false) return { status: GetStatus.badRequest };
    if (!(await this.allowed(conn))) return { status: GetStatus.forbidden };
    if (req.transport === 'batch') return this.ticket(conn, req.sessionId, undefined, 0);
    let file: F | undefined;
    try {
      file = await this.share.lookup(req.name);
    } catch {
      return { status: GetStatus.internal };
    }
    if (!file) return { status: GetStatus.notFound };
    if (req.expectedSha256 && req.expectedSha256 !== file.sha256) return { status: GetStatus.changed };
    if (req.offset > file.size) return { status: GetStatus.badOffset };
    if (this.closed) return { status: GetStatus.busy };
    const key = conn.peerKey.toString('base64url');
    if (req.transport === 'udp') {
      const slot = this.slots.take(key);
      if (!slot) return { status: GetStatus.busy };
      slot.pin(); // the transfer starts with the answer: nothing to take over
      return { status: GetStatus.ok, file, slot };
    }
    return this.ticket(conn, req.sessionId, file, req.offset);
  }

  /** A TCP ticket for (connection, session ID), holding a slot until redeemed or dropped; busy without a slot. */
  private ticket(conn: Connection, id: number, file: F | undefined, offset: number): Verdict<F> {
    if (this.closed) return { status: GetStatus.busy };
    const slot = this.slots.take(conn.peerKey.toString('base64url'), () => this.dropTicket(conn, id));
    if (!slot) return { status: GetStatus.busy };
    const timer = setTimeout(() => this.dropTicket(conn, id), this.opts.ticketTtlMs ?? TICKET_TTL_MS);
    timer.unref();
    this.tickets.set(conn, id, { ...(file ? { file } : {}), offset, from: conn.remote, slot, timer });
    return { status: GetStatus.ok, ...(file ? { file } : {}), slot };
  }

  private sweep(): void {
    const now = Date.now();
    for (const [conn, id] of this.tickets.entries()) if (conn.closed) this.dropTicket(conn, id);
    for (const [conn, id, a] of this.answers.entries()) if (a.expires < now) this.answers.delete(conn, id);
    // Still over the cap (a flood of distinct requests): forget those of the oldest connections.
    for (const [conn, id] of this.answers.entries()) {
      if (this.answers.size <= MAX_REMEMBERED) break;
      this.answers.delete(conn, id);
    }
  }
}

/**
 * The largest LIST page body on `conn`: what a datagram of the base size carries (the size DATA
 * uses unprobed, PROTOCOL.md 4.2 and 6.10), so that a listing crosses every path a transfer
 * does, also one narrower than Ethernet that drops larger datagrams without a word; between two
 * endpoints of one host, whatever the connection proved it carries.
 */
export function listBodyLimit(conn: Pick<Connection, 'maxBody' | 'overhead'>): number {
  if (conn.maxBody > MAX_DATAGRAM_BYTES - conn.overhead) return conn.maxBody;
  return Math.min(conn.maxBody, DATA_HEADER_BYTES + DEFAULT_MAX_PAYLOAD);
}

/** The run of `all` (sorted by name) whose names start with `prefix`: two binary searches. */
export function prefixRange(all: readonly { name: string }[], prefix: string): { from: number; to: number } {
  if (prefix === '') return { from: 0, to: all.length };
  // Sorted by code units, names starting with `prefix` follow those below it and precede the rest.
  const from = firstIndex(all, (n) => n >= prefix);
  const to = firstIndex(all, (n) => n > prefix && !n.startsWith(prefix));
  return { from, to: Math.max(from, to) };
}

/** The entry named exactly `name`, as a range of 0 or 1. */
function exactRange(all: readonly { name: string }[], name: string): { from: number; to: number } {
  const from = firstIndex(all, (n) => n >= name);
  return { from, to: all[from]?.name === name ? from + 1 : from };
}

/** The first index whose name satisfies `past` (false, then true, along the array), or the length. */
function firstIndex(all: readonly { name: string }[], past: (name: string) => boolean): number {
  let lo = 0;
  let hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (past(all[mid]!.name)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
