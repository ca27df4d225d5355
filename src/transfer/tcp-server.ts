// TCP transfer, owner side (PROTOCOL.md section 5): a requester's hello names its session
// (connection index, session ID) and proves the session's key; the owner then answers in sealed
// records: status and byte count first, then the file from the offset, in records of 64 KiB.
import { open } from 'node:fs/promises';
import net from 'node:net';
import { Opener, Sealer } from '../crypto/transport';
import type { Connection, Remote, SecureConnection } from '../net/connection';
import { normalizeIp } from '../core/addresses';
import { decodeTcpHello, encodeTcpReply, MAX_RECORD_PLAINTEXT, TCP_HELLO_BYTES, TCP_HELLO_PREFIX_BYTES, tcpHelloVersion, TCP_VERSION, TcpStatus } from '../wire/tcp';
import { serveBatch } from './tcp-batch-server';
import { closedError, cutWhenStalled, drained, endStream, SEALED_QUEUE_BYTES, sealRecord, sealRecordParts } from './tcp-records';

/** What the TCP server needs to know of a file it streams. */
export interface ServedFile {
  name: string;
  path: string;
  size: number;
  /** Hex, of the bytes at `path` as last hashed. */
  sha256: string;
}

/** A GET answered ok for TCP: the file, from where, and who asked (redeemed once by the hello). */
export interface TcpTicket<F extends ServedFile = ServedFile> {
  kind: 'file';
  file: F;
  offset: number;
  from: Remote;
  /** Frees the transfer slot the ticket held; called once the stream ends or is refused. */
  release(): void;
}

/** A batch GET answered ok (PROTOCOL.md 5.1): the files are asked for on the stream itself. */
export interface BatchTicket {
  kind: 'batch';
  from: Remote;
  release(): void;
}

/** The owner's control side, as the TCP server uses it (control/server.ts implements it). */
export interface TcpServerHooks<F extends ServedFile = ServedFile> {
  /** The validated connection with this local index, whose keys the hello must prove. */
  connection(index: number): SecureConnection | undefined;
  takeTicket(conn: Connection, sessionId: number): TcpTicket<F> | BatchTicket | undefined;
  /** For a batch: the current entry for a shared name (hashed first if it changed), or undefined. */
  lookup(name: string): Promise<F | undefined>;
  /** False when the file changed on disk since its digest was announced in the GET answer. */
  isCurrent(file: F): Promise<boolean>;
  track(e: { from: Remote; name: string; size: number; offset: number; via: 'tcp'; files?: number }, done: Promise<unknown>): void;
}

/** Hellos refused: not a hello, a bad tag, an unknown connection or ticket (for tests and metrics). */
export const tcpRefusals = { malformed: 0, badAuth: 0, badTicket: 0, oldVersion: 0 };
/**
 * Connections closed before their hello completed: its deadline passed (`late`), or a newer
 * connection took the place of the oldest hello-less one, from the same source address
 * (`perSource`) or from anywhere when every connection was taken (`full`).
 */
export const tcpEvictions = { late: 0, perSource: 0, full: 0 };

export interface TcpServerOptions {
  /** The hello must be complete this long after the connection opened (a deadline). */
  helloTimeoutMs?: number;
  /** A stream whose requester takes nothing for this long is closed (its slot freed). */
  idleTimeoutMs?: number;
  /** Connections open at once, streaming or not. */
  maxConnections?: number;
  /** Connections without a complete hello from one source address at once. */
  maxHelloPendingPerSource?: number;
}

export const HELLO_TIMEOUT_MS = 2_000;
export const IDLE_TIMEOUT_MS = 30_000;
export const MAX_CONNECTIONS = 256;
export const MAX_HELLO_PENDING_PER_SOURCE = 32;

/** Open connections per server, for closeTcpServer. */
const connections = new WeakMap<net.Server, Set<net.Socket>>();

/**
 * The TCP server of an owner. A requester sends its hello at once, so a connection that has not
 * sent one is the cheapest to lose: when a source address already holds
 * `maxHelloPendingPerSource` hello-less connections, a new one from it closes the oldest of them;
 * when `maxConnections` are open, a new one closes the oldest hello-less connection of all (the
 * newcomer is refused only when none is left, which the transfer slots make impossible). So
 * connections that never say hello cannot keep a requester out: they are closed after
 * `helloTimeoutMs` anyway, and newer connections always win over them meanwhile.
 */
export function createTcpServer<F extends ServedFile>(hooks: TcpServerHooks<F>, options: TcpServerOptions = {}): net.Server {
  const o = {
    helloTimeoutMs: options.helloTimeoutMs ?? HELLO_TIMEOUT_MS,
    idleTimeoutMs: options.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
    maxConnections: options.maxConnections ?? MAX_CONNECTIONS,
    maxHelloPendingPerSource: options.maxHelloPendingPerSource ?? MAX_HELLO_PENDING_PER_SOURCE,
  };
  const open = new Set<net.Socket>();
  const pending = new HelloPending();
  const server = net.createServer({ noDelay: true }, (socket) => {
    const source = normalizeIp(socket.remoteAddress ?? '');
    if (pending.from(source) >= o.maxHelloPendingPerSource) {
      tcpEvictions.perSource++;
      close(pending.oldestFrom(source)!);
    }
    if (open.size >= o.maxConnections) {
      const oldest = pending.oldest();
      if (!oldest) return void socket.destroy();
      tcpEvictions.full++;
      close(oldest);
    }
    open.add(socket);
    pending.add(socket, source);
    socket.on('close', () => {
      open.delete(socket);
      pending.delete(socket);
    });
    serve(socket, hooks, o, () => pending.delete(socket));
  });
  // Closed here at once, not on 'close' (which comes a turn later), so the counts above hold.
  const close = (socket: net.Socket) => {
    open.delete(socket);
    pending.delete(socket);
    socket.destroy();
  };
  connections.set(server, open);
  return server;
}

/** Hello-less connections, oldest first, in all and by source address. */
class HelloPending {
  private readonly all = new Set<net.Socket>();
  private readonly bySource = new Map<string, Set<net.Socket>>();
  private readonly sourceOf = new Map<net.Socket, string>();

  add(socket: net.Socket, source: string): void {
    this.all.add(socket);
    this.sourceOf.set(socket, source);
    let set = this.bySource.get(source);
    if (!set) this.bySource.set(source, (set = new Set()));
    set.add(socket);
  }

  delete(socket: net.Socket): void {
    const source = this.sourceOf.get(socket);
    if (source === undefined) return;
    this.all.delete(socket);
    this.sourceOf.delete(socket);
    const set = this.bySource.get(source)!;
    set.delete(socket);
    if (set.size === 0) this.bySource.delete(source);
  }

  from(source: string): number {
    return this.bySource.get(source)?.size ?? 0;
  }

  oldestFrom(source: string): net.Socket | undefined {
    return first(this.bySource.get(source));
  }

  oldest(): net.Socket | undefined {
    return first(this.all);
  }
}

function first<T>(set: Set<T> | undefined): T | undefined {
  if (set) for (const v of set) return v;
  return undefined;
}

/**
 * Stops listening and ends every open connection at once. server.close() alone waits for each
 * transfer to finish, which a stalled requester makes take until the idle timeout.
 */
export function closeTcpServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of connections.get(server) ?? []) socket.destroy();
  });
}

interface Timers {
  helloTimeoutMs: number;
  idleTimeoutMs: number;
}

function serve<F extends ServedFile>(socket: net.Socket, hooks: TcpServerHooks<F>, timers: Timers, helloDone: () => void): void {
  socket.on('error', () => {}); // a vanished requester is not our error
  // A deadline, not an inactivity timeout: a hello sent a byte at a time, or a refused requester
  // that never closes its side, must not hold a connection past this.
  const helloDeadline = setTimeout(() => {
    tcpEvictions.late++;
    socket.destroy();
  }, timers.helloTimeoutMs);
  socket.on('close', () => clearTimeout(helloDeadline));
  let buffered = Buffer.alloc(0);
  const refuse = (why: keyof typeof tcpRefusals) => {
    tcpRefusals[why]++;
    socket.destroy(); // no reply: nothing to seal it with that the requester proved it holds
  };
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (buffered.length < TCP_HELLO_PREFIX_BYTES) return;
    const version = tcpHelloVersion(buffered);
    if (version === null) return refuse('malformed');
    if (version !== TCP_VERSION) {
      // A version-1 requester gets version 1's clear answer: "version not supported".
      socket.off('data', onData);
      tcpRefusals.oldVersion++;
      return void socket.end(encodeTcpReply(TcpStatus.badVersion, 0));
    }
    if (buffered.length < TCP_HELLO_BYTES) return;
    socket.off('data', onData);
    socket.pause();
    const hello = decodeTcpHello(buffered.subarray(0, TCP_HELLO_BYTES));
    if (!hello || buffered.length > TCP_HELLO_BYTES) return refuse('malformed');
    const conn = hooks.connection(hello.index);
    if (!conn) return refuse('badTicket');
    const keys = conn.tcpKeys(hello.sessionId);
    // The tag seals nothing under the session's key: only the requester of that session can make it.
    if (!new Opener(keys.requesterToOwner).open(0, hello.ad, hello.tag)) return refuse('badAuth');
    const ticket = hooks.takeTicket(conn, hello.sessionId);
    if (!ticket) return refuse('badTicket');
    // A valid hello: this connection is a transfer now, bounded by its slot and the idle timeout.
    clearTimeout(helloDeadline);
    helloDone();
    socket.once('close', ticket.release);
    const sealer = new Sealer(keys.ownerToRequester);
    if (ticket.kind === 'batch') {
      const opener = new Opener(keys.requesterToOwner);
      return serveBatch(socket, { sealer, opener, conn, lookup: (name) => hooks.lookup(name), track: (e, done) => hooks.track(e, done), idleTimeoutMs: timers.idleTimeoutMs });
    }
    // The GET answer announced a digest; bytes of another version must not follow it.
    void hooks.isCurrent(ticket.file).then((current) => {
      if (socket.destroyed) return;
      if (!current) return void socket.end(sealRecord(sealer, 0, encodeTcpReply(TcpStatus.internal, 0)));
      stream(socket, ticket, sealer, conn, hooks, timers.idleTimeoutMs);
    });
  };
  socket.on('data', onData);
}

/** File bytes read at once. */
const READ_BYTES = 1024 * 1024;

/**
 * Sends `count` bytes of the file from `offset` as sealed records numbered from 1 (0 is the
 * reply), and ends the socket; rejects on the first error, the file closed either way. The file
 * is read into one buffer, reused: sealing copies its bytes out (each record's ciphertext is a
 * buffer of its own), and a fresh 1 MiB per read cost more than the sealing on this platform
 * (first-touch page faults). Each record goes out as its three pieces, the pieces of one read as
 * one corked write (writev). A file that shrank since it was listed ends short, and the requester
 * says so.
 */
async function sendRecords(path: string, offset: number, count: number, socket: net.Socket, sealer: Sealer): Promise<void> {
  const file = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(READ_BYTES, count));
    let n = 1;
    for (let done = 0; done < count; ) {
      const { bytesRead } = await file.read(buf, 0, Math.min(buf.length, count - done), offset + done);
      if (bytesRead === 0) break;
      if (socket.destroyed) throw closedError(socket);
      socket.cork();
      for (let at = 0; at < bytesRead; at += MAX_RECORD_PLAINTEXT) {
        for (const part of sealRecordParts(sealer, n++, buf.subarray(at, Math.min(at + MAX_RECORD_PLAINTEXT, bytesRead)))) socket.write(part);
      }
      socket.uncork();
      done += bytesRead;
      // The requester is behind: read no more until the socket's queue drains.
      if (socket.writableLength >= SEALED_QUEUE_BYTES) await drained(socket);
    }
    await endStream(socket);
  } finally {
    await file.close();
  }
}

function stream<F extends ServedFile>(socket: net.Socket, t: TcpTicket<F>, sealer: Sealer, conn: Connection, hooks: TcpServerHooks<F>, idleTimeoutMs: number): void {
  const count = t.file.size - t.offset;
  cutWhenStalled(socket, idleTimeoutMs);
  const release = conn.hold(); // its keys must outlive an idle UDP side while the file streams
  const done = new Promise<void>((resolve, reject) => {
    socket.write(sealRecord(sealer, 0, encodeTcpReply(TcpStatus.ok, count)));
    if (count === 0) {
      socket.end();
      socket.on('close', () => resolve());
      return;
    }
    // Exactly the size announced in GET_RESPONSE; a file that grew is cut there, one that shrank
    // ends short and the requester reports it. When the requester hangs up, the file is closed.
    sendRecords(t.file.path, t.offset, count, socket, sealer).then(resolve, (err: Error) => {
      socket.destroy();
      reject(err);
    });
  });
  done.then(release, release);
  done.then(t.release, t.release);
  hooks.track({ from: { address: normalizeIp(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 }, name: t.file.name, size: t.file.size, offset: t.offset, via: 'tcp' }, done);
}
