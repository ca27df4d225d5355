// TCP transfer, owner side (PROTOCOL.md section 5): a requester's hello names its session
// (connection index, session ID) and proves the session's key; the owner then answers in sealed
// records: status and byte count first, then the file from the offset, in records of 64 KiB.
import { createReadStream } from 'node:fs';
import net from 'node:net';
import { pipeline, Transform } from 'node:stream';
import { Opener, Sealer } from '../crypto/transport';
import type { Connection, Remote, SecureConnection } from '../net/connection';
import { normalizeIp } from '../core/addresses';
import {
  decodeTcpHello,
  encodeRecordHeader,
  encodeTcpReply,
  MAX_RECORD_PLAINTEXT,
  TCP_HELLO_BYTES,
  TCP_HELLO_PREFIX_BYTES,
  tcpHelloVersion,
  TCP_VERSION,
  TcpStatus,
} from '../wire/tcp';

/** What the TCP server needs to know of a file it streams. */
export interface ServedFile {
  name: string;
  path: string;
  size: number;
}

/** A GET answered ok for TCP: the file, from where, and who asked (redeemed once by the hello). */
export interface TcpTicket<F extends ServedFile = ServedFile> {
  file: F;
  offset: number;
  from: Remote;
  /** Frees the transfer slot the ticket held; called once the stream ends or is refused. */
  release(): void;
}

/** The owner's control side, as the TCP server uses it (control/server.ts implements it). */
export interface TcpServerHooks<F extends ServedFile = ServedFile> {
  /** The validated connection with this local index, whose keys the hello must prove. */
  connection(index: number): SecureConnection | undefined;
  takeTicket(conn: Connection, sessionId: number): TcpTicket<F> | undefined;
  /** False when the file changed on disk since its digest was announced in the GET answer. */
  isCurrent(file: F): Promise<boolean>;
  track(e: { from: Remote; name: string; size: number; offset: number; via: 'tcp' }, done: Promise<unknown>): void;
}

/** Hellos refused: not a hello, a bad tag, an unknown connection or ticket (for tests and metrics). */
export const tcpRefusals = { malformed: 0, badAuth: 0, badTicket: 0, oldVersion: 0 };

const HELLO_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 30_000;
const MAX_CONNECTIONS = 256;

/** Open connections per server, for closeTcpServer. */
const connections = new WeakMap<net.Server, Set<net.Socket>>();

export function createTcpServer<F extends ServedFile>(hooks: TcpServerHooks<F>): net.Server {
  const open = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    serve(socket, hooks);
  });
  server.maxConnections = MAX_CONNECTIONS;
  connections.set(server, open);
  return server;
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

function serve<F extends ServedFile>(socket: net.Socket, hooks: TcpServerHooks<F>): void {
  socket.on('error', () => {}); // a vanished requester is not our error
  // A deadline, not an inactivity timeout: a hello sent a byte at a time, or a refused requester
  // that never closes its side, must not hold one of the MAX_CONNECTIONS slots past this.
  const helloDeadline = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
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
    socket.once('close', ticket.release);
    const sealer = new Sealer(keys.ownerToRequester);
    // The GET answer announced a digest; bytes of another version must not follow it.
    void hooks.isCurrent(ticket.file).then((current) => {
      if (socket.destroyed) return;
      if (!current) return void socket.end(sealRecord(sealer, 0, encodeTcpReply(TcpStatus.internal, 0)));
      clearTimeout(helloDeadline); // from here the idle timeout of the stream applies
      stream(socket, ticket, sealer, conn, hooks);
    });
  };
  socket.on('data', onData);
}

/** One record: header, then the plaintext sealed under record number `n` (its nonce). */
function sealRecord(sealer: Sealer, n: number, plaintext: Buffer): Buffer {
  const sealedLength = plaintext.length + 16;
  const header = encodeRecordHeader(sealedLength);
  return Buffer.concat([header, sealer.seal(n, header, plaintext)]);
}

/** File bytes read at once, and sealed records queued for the socket: the disk runs ahead of the network. */
const READ_BYTES = 1024 * 1024;
const SEALED_QUEUE_BYTES = 4 * 1024 * 1024;

/** Cuts the file's bytes into sealed records, numbered from 1 (0 is the reply). */
function recordSealer(sealer: Sealer): Transform {
  let n = 1;
  return new Transform({
    writableHighWaterMark: READ_BYTES,
    readableHighWaterMark: SEALED_QUEUE_BYTES,
    transform(chunk: Buffer, _enc, done) {
      for (let at = 0; at < chunk.length; at += MAX_RECORD_PLAINTEXT) {
        this.push(sealRecord(sealer, n++, chunk.subarray(at, at + MAX_RECORD_PLAINTEXT)));
      }
      done();
    },
  });
}

function stream<F extends ServedFile>(socket: net.Socket, t: TcpTicket<F>, sealer: Sealer, conn: Connection, hooks: TcpServerHooks<F>): void {
  const count = t.file.size - t.offset;
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy(new Error('requester idle for 30 s')));
  const release = conn.hold(); // its keys must outlive an idle UDP side while the file streams
  const done = new Promise<void>((resolve, reject) => {
    socket.write(sealRecord(sealer, 0, encodeTcpReply(TcpStatus.ok, count)));
    if (count === 0) {
      socket.end();
      socket.on('close', () => resolve());
      return;
    }
    // Exactly the size announced in GET_RESPONSE; a file that grew is cut there, one that shrank
    // ends short and the requester reports it.
    const file = createReadStream(t.file.path, { start: t.offset, end: t.file.size - 1, highWaterMark: READ_BYTES });
    // pipeline, not pipe: when the requester hangs up, the file is closed too (pipe left it open).
    pipeline(file, recordSealer(sealer), socket, (err) => {
      if (!err) return resolve();
      reject((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' ? new Error('connection closed before the end') : err);
    });
  });
  done.then(release, release);
  done.then(t.release, t.release);
  hooks.track({ from: { address: normalizeIp(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 }, name: t.file.name, size: t.file.size, offset: t.offset, via: 'tcp' }, done);
}
