// Owner side of the control protocol: answers LIST and GET from the peer's one UDP port, hands
// out one-shot TCP tickets, starts UDP sends, and says "busy" past its transfer limit.
import { normalizeIp } from '../core/addresses';
import type { Connection, Remote } from '../net/connection';
import type { Endpoint } from '../net/endpoint';
import { SessionTable } from '../net/sessions';
import type { ServedFile, TcpServerHooks, TcpTicket } from '../transfer/tcp-server';
import { chunkBytesFor } from '../transfer/udp/index';
import { FrameType, type Frame } from '../wire/frame';
import {
  decodeGetRequest,
  decodeListRequest,
  encodeGetResponse,
  encodeListResponse,
  GetStatus,
  type GetRequest,
  type ListEntry,
} from '../wire/control';
import type { FileKind } from '../wire/shared-file';

/** A file as the control server offers it: what LIST shows and GET and the transports need. */
export interface OfferedFile extends ServedFile {
  sha256: string;
  kind: FileKind;
}

/** The files on offer (peer/share.ts's ShareIndex). */
export interface Offer<F extends OfferedFile> {
  /** Grows whenever an entry changes: a list built at another version is stale. */
  readonly version: number;
  list(): F[];
  /** The current entry for a name (re-hashed first if it changed), or undefined. */
  lookup(name: string): Promise<F | undefined>;
  /** False when the file changed on disk since the entry was made. */
  isCurrent(file: F): Promise<boolean>;
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
  ok: boolean;
  error?: string;
}

const TICKET_TTL_MS = 30_000;
/** How long an answered GET is remembered, so that a retry gets the same answer. */
const ANSWER_MEMORY_MS = 60_000;
const MAX_REMEMBERED = 4096;

export class ControlServer<F extends OfferedFile> implements TcpServerHooks<F> {
  active = 0;
  private readonly tickets = new Map<number, TcpTicket<F> & { expires: number }>();
  /** GET answers by (requester's connection, session ID). */
  private readonly answers = new SessionTable<{ body: Buffer; expires: number }>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  private listed: { version: number; entries: ListEntry[] } | undefined;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly share: Offer<F>,
    private readonly opts: {
      maxTransfers: number;
      udp?: UdpSender;
      onFetch?: (e: FetchEvent) => void;
      sizes?: (f: F) => { width: number; height: number };
    },
  ) {
    endpoint.on(FrameType.listRequest, (f, conn) => this.onList(f, conn));
    // onGet answers after an await (a re-hash can take seconds): a failure then, such as the
    // socket closed by a shutdown meanwhile, must not become an unhandled rejection (fatal).
    endpoint.on(FrameType.getRequest, (f, conn) => void this.onGet(f, conn).catch(() => endpoint.reject()));
    this.sweeper = setInterval(() => this.sweep(), 5_000).unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    this.endpoint.off(FrameType.listRequest);
    this.endpoint.off(FrameType.getRequest);
  }

  /** The TCP server redeems a ticket: once, within 30 s, only from the IP that asked. */
  takeTicket(sessionId: number, fromAddress: string): TcpTicket<F> | undefined {
    const t = this.tickets.get(sessionId);
    // Compared in one spelling: a TCP socket may say '::ffff:1.2.3.4' where UDP said '1.2.3.4'.
    if (!t || t.expires < Date.now() || normalizeIp(t.from.address) !== normalizeIp(fromAddress)) return undefined;
    this.tickets.delete(sessionId);
    return t;
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

  /**
   * The list as LIST pages it, built again only when the share changed: a LIST datagram is 16
   * bytes, and copying 100,000 entries for each would let anyone keep the owner's CPU busy.
   */
  private entries(): ListEntry[] {
    if (this.listed?.version !== this.share.version) {
      const entries = this.share.list().map((f) => ({
        name: f.name,
        size: f.size,
        sha256: f.sha256,
        kind: f.kind,
        ...(this.opts.sizes?.(f) ?? { width: 0, height: 0 }),
      }));
      this.listed = { version: this.share.version, entries };
    }
    return this.listed.entries;
  }

  private onList(frame: Frame, conn: Connection): void {
    const start = decodeListRequest(frame.body);
    if (start === null) return this.endpoint.reject();
    conn.send(FrameType.listResponse, frame.id, encodeListResponse(this.entries(), start, conn.maxBody));
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
    if (this.closed) return; // shut down meanwhile: no answer, no ticket, no transfer
    const file = 'file' in verdict ? verdict.file : undefined;
    pending.body = encodeGetResponse(file ? { status: GetStatus.ok, size: file.size, sha256: file.sha256 } : { status: verdict.status, size: 0, sha256: '' });
    if (!file) this.answers.delete(conn, req.sessionId); // nothing started: a retry may be judged afresh
    if (this.answers.size > MAX_REMEMBERED) this.sweep();
    conn.send(FrameType.getResponse, frame.id, pending.body);
    if (file && req.transport === 'udp') {
      const done = this.opts.udp!.send({ conn, sessionId: req.sessionId, path: file.path, offset: req.offset, size: file.size, maxPayload: req.maxPayload });
      this.track({ from: conn.remote, name: file.name, size: file.size, offset: req.offset, via: 'udp' }, done);
    }
  }

  private async admit(req: GetRequest, conn: Connection): Promise<{ status: typeof GetStatus.ok; file: F } | { status: GetStatus }> {
    // UDP needs a transport here and a max payload it can cut chunks to (PROTOCOL.md 6.1).
    if (req.transport === 'udp' && (!this.opts.udp || chunkBytesFor(req.maxPayload, conn.maxBody) === null)) return { status: GetStatus.badRequest };
    let file: F | undefined;
    try {
      file = await this.share.lookup(req.name);
    } catch {
      return { status: GetStatus.internal };
    }
    if (!file) return { status: GetStatus.notFound };
    if (req.expectedSha256 && req.expectedSha256 !== file.sha256) return { status: GetStatus.changed };
    if (req.offset > file.size) return { status: GetStatus.badOffset };
    if (this.active + this.tickets.size >= this.opts.maxTransfers) return { status: GetStatus.busy };
    if (req.transport === 'tcp') {
      this.tickets.set(req.sessionId, { file, offset: req.offset, from: conn.remote, expires: Date.now() + TICKET_TTL_MS });
    }
    return { status: GetStatus.ok, file };
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, t] of this.tickets) if (t.expires < now) this.tickets.delete(k);
    for (const [conn, id, a] of this.answers.entries()) if (a.expires < now) this.answers.delete(conn, id);
    // Still over the cap (a flood of distinct requests): forget those of the oldest connections.
    for (const [conn, id] of this.answers.entries()) {
      if (this.answers.size <= MAX_REMEMBERED) break;
      this.answers.delete(conn, id);
    }
  }
}
