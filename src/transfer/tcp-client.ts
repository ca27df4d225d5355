// TCP transfer, requester side: presents the ticket, then appends the stream to the .part file.
import { createWriteStream } from 'node:fs';
import net from 'node:net';
import { decodeTcpReply, encodeTcpHello, TCP_REPLY_BYTES, TcpStatus } from '../wire/tcp';

export interface TcpFetchOptions {
  host: string;
  port: number;
  sessionId: number;
  partPath: string;
  /** Bytes already in the .part file; new bytes are written from here. */
  offset: number;
  /** Bytes expected after `offset`. */
  count: number;
  idleTimeoutMs?: number;
  onProgress?: (bytesDone: number) => void;
  /** Aborting ends the transfer at once; the bytes written so far stay in the .part. */
  signal?: AbortSignal;
}

const DISK_STALL_MS = 60_000;

export function fetchOverTcp(o: TcpFetchOptions): Promise<{ bytes: number }> {
  const idle = o.idleTimeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: o.host, port: o.port, noDelay: true });
    const out = createWriteStream(o.partPath, { flags: 'r+', start: o.offset, highWaterMark: 1024 * 1024 });
    let received = 0;
    let header = Buffer.alloc(0);
    let settled = false;
    let diskStall: NodeJS.Timeout | undefined;
    const fail = (msg: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(diskStall);
      socket.destroy();
      out.end(() => reject(new Error(msg)));
    };
    const onAbort = () => fail('interrupted');
    if (o.signal?.aborted) onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('close', () => o.signal?.removeEventListener('abort', onAbort));
    socket.setTimeout(idle, () => fail(`no data from peer for ${Math.round(idle / 1000)} s (idle timeout)`));
    socket.on('error', (err) => fail(`connection to peer failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    out.on('error', (err) => fail(`cannot write ${o.partPath}: ${err.message}`));
    socket.on('connect', () => socket.write(encodeTcpHello(o.sessionId)));
    const onBody = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      if (received + chunk.length > o.count) return fail('peer sent more bytes than announced');
      received += chunk.length;
      o.onProgress?.(received);
      if (!out.write(chunk)) {
        // Our disk is behind, not the peer: while we do not read, its silence is not idleness.
        // The wait for the disk has its own, longer bound.
        socket.pause();
        socket.setTimeout(0);
        diskStall = setTimeout(() => fail(`cannot write ${o.partPath}: the disk took over ${DISK_STALL_MS / 1000} s`), DISK_STALL_MS);
        out.once('drain', () => {
          clearTimeout(diskStall);
          if (settled) return;
          socket.setTimeout(idle);
          socket.resume();
        });
      }
    };
    socket.on('data', (chunk: Buffer) => {
      if (header.length < TCP_REPLY_BYTES) {
        header = Buffer.concat([header, chunk]);
        if (header.length < TCP_REPLY_BYTES) return;
        const reply = decodeTcpReply(header.subarray(0, TCP_REPLY_BYTES));
        if (!reply) return fail('peer sent a malformed TCP reply');
        if (reply.status !== TcpStatus.ok) return fail(tcpRefusal(reply.status));
        if (reply.count !== o.count) return fail(`peer announced ${reply.count} bytes, expected ${o.count}`);
        onBody(header.subarray(TCP_REPLY_BYTES));
        return;
      }
      onBody(chunk);
    });
    socket.on('end', () => {
      if (settled) return;
      if (header.length < TCP_REPLY_BYTES || received !== o.count) {
        return fail(`connection closed after ${received} of ${o.count} bytes`);
      }
      settled = true;
      // The end of the stream can come while we wait for the disk, and an ended write stream
      // never says 'drain': the disk timer is cleared here, or it would hold the process 60 s.
      clearTimeout(diskStall);
      out.end(() => resolve({ bytes: received }));
    });
    socket.on('close', () => {
      if (!settled) fail(`connection closed after ${received} of ${o.count} bytes`);
    });
  });
}

function tcpRefusal(status: number): string {
  if (status === TcpStatus.badTicket) return 'peer refused the transfer ticket (unknown, expired or used)';
  if (status === TcpStatus.badVersion) return 'peer does not speak this TCP transfer version';
  if (status === TcpStatus.internal) return 'peer could not serve the file (it changed on disk or cannot be read)';
  return `peer refused the transfer (status ${status})`;
}
