// TCP transfer, owner side (PROTOCOL.md section 5): a requester presents the ticket it got in
// a GET_RESPONSE; the owner answers status + byte count and streams the file from the offset.
import { createReadStream } from 'node:fs';
import net from 'node:net';
import { pipeline } from 'node:stream';
import { decodeTcpHello, encodeTcpReply, TCP_HELLO_BYTES, TcpStatus } from '../wire/tcp';
import type { Remote } from '../net/connection';
import { normalizeIp } from '../core/addresses';

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
}

/** The owner's control side, as the TCP server uses it (control/server.ts implements it). */
export interface TcpServerHooks<F extends ServedFile = ServedFile> {
  takeTicket(sessionId: number, fromAddress: string): TcpTicket<F> | undefined;
  /** False when the file changed on disk since its digest was announced in the GET answer. */
  isCurrent(file: F): Promise<boolean>;
  track(e: { from: Remote; name: string; size: number; offset: number; via: 'tcp' }, done: Promise<unknown>): void;
}

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
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (buffered.length < TCP_HELLO_BYTES) return;
    socket.off('data', onData);
    socket.pause();
    const hello = decodeTcpHello(buffered.subarray(0, TCP_HELLO_BYTES));
    if (!hello) return void socket.destroy();
    if (hello.version !== 1) return void socket.end(encodeTcpReply(TcpStatus.badVersion, 0));
    const ticket = hooks.takeTicket(hello.sessionId, socket.remoteAddress ?? '');
    if (!ticket) return void socket.end(encodeTcpReply(TcpStatus.badTicket, 0));
    // The GET answer announced a digest; bytes of another version must not follow it.
    void hooks.isCurrent(ticket.file).then((current) => {
      if (socket.destroyed) return;
      if (!current) return void socket.end(encodeTcpReply(TcpStatus.internal, 0));
      clearTimeout(helloDeadline); // from here the idle timeout of the stream applies
      stream(socket, ticket, hooks);
    });
  };
  socket.on('data', onData);
}

function stream<F extends ServedFile>(socket: net.Socket, t: TcpTicket<F>, hooks: TcpServerHooks<F>): void {
  const count = t.file.size - t.offset;
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy(new Error('requester idle for 30 s')));
  const done = new Promise<void>((resolve, reject) => {
    socket.write(encodeTcpReply(TcpStatus.ok, count));
    if (count === 0) {
      socket.end();
      socket.on('close', () => resolve());
      return;
    }
    // Exactly the size announced in GET_RESPONSE; a file that grew is cut there, one that shrank
    // ends short and the requester reports it.
    const file = createReadStream(t.file.path, { start: t.offset, end: t.file.size - 1, highWaterMark: 256 * 1024 });
    // pipeline, not pipe: when the requester hangs up, the file is closed too (pipe left it open).
    pipeline(file, socket, (err) => {
      if (!err) return resolve();
      reject((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' ? new Error('connection closed before the end') : err);
    });
  });
  hooks.track({ from: { address: normalizeIp(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 }, name: t.file.name, size: t.file.size, offset: t.offset, via: 'tcp' }, done);
}

