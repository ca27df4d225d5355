// TCP transfer, requester side (PROTOCOL.md section 5): a hello proving the session, then sealed
// records: the owner's reply, then the file's bytes, each authenticated before it is written to
// the .part file. A record that fails authentication ends the transfer with TcpAuthError, and
// the .part then holds only authenticated bytes, so the caller can resume from it.
import { createWriteStream, fdatasync } from 'node:fs';
import net from 'node:net';
import { Opener, Sealer } from '../crypto/transport';
import type { SecureConnection } from '../net/connection';
import { decodeTcpReply, encodeTcpHelloHead, TCP_REPLY_BYTES, TCP_TAG_BYTES, TcpStatus } from '../wire/tcp';
import { joined, SealedRecords } from './sealed-records';

/** A record did not authenticate (tampered with, or corrupted past TCP's checksum). */
export class TcpAuthError extends Error {
  constructor() {
    super('a TCP record from the peer failed authentication (tampered with or corrupted)');
    this.name = 'TcpAuthError';
  }
}

/**
 * Records refused by requesters in this process (for tests and metrics): tags that failed, and
 * length fields no owner sends (below 17, or past the bytes announced when the stream ends).
 */
export const tcpRecordFailures = { badAuth: 0, badLength: 0 };

export interface TcpFetchOptions {
  /** The session the GET was made on: its owner's address, index and TCP keys. */
  conn: SecureConnection;
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
  /** Given every byte written, in order, as it is written (a SHA-256 of the file as it arrives). */
  hash?: { update(data: Buffer): unknown };
  /** Told each time the file's bytes up to `end` (from its start, `offset` included) are written. */
  onWritten?: (end: number) => void;
}

const DISK_STALL_MS = 60_000;
const SYNC_EVERY_BYTES = 32 * 1024 * 1024;
const READ_BUFFER_BYTES = 256 * 1024;

export function fetchOverTcp(o: TcpFetchOptions): Promise<{ bytes: number }> {
  const idle = o.idleTimeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const keys = o.conn.tcpKeys(o.sessionId);
    const records = new SealedRecords(new Opener(keys.ownerToRequester), 0);
    // Every read lands in one buffer, reused (records are opened before the next read, and an
    // unfinished one is copied out by detach()): a fresh 64 KiB per read cost more than opening
    // the records on this platform (first-touch page faults, and the GC that the churn drives).
    const socket = transferSocket(
      o,
      idle,
      (why) => fail(why),
      {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (n: number, buf: Uint8Array) => {
          onChunk(Buffer.from(buf.buffer, buf.byteOffset, n));
          return true; // a full disk queue pauses the socket itself (below)
        },
      },
    );
    const out = createWriteStream(o.partPath, { flags: 'r+', start: o.offset, highWaterMark: 1024 * 1024 });
    let received = 0;
    let unsynced = 0;
    let syncing = false;
    let fd: number | undefined;
    out.once('open', (opened: number) => (fd = opened));
    let replied = false;
    let settled = false;
    let diskStall: NodeJS.Timeout | undefined;
    const fail = (why: string | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(diskStall);
      socket.destroy();
      out.end(() => reject(typeof why === 'string' ? new Error(why) : why));
    };
    // A damaged record: nothing of it was written, so the caller may resume from the .part.
    const tampered = (why: keyof typeof tcpRecordFailures) => {
      tcpRecordFailures[why]++;
      fail(new TcpAuthError());
    };
    out.on('error', (err) => fail(`cannot write ${o.partPath}: ${err.message}`));
    const onBody = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      if (received + chunk.length > o.count) return fail('peer sent more bytes than announced');
      received += chunk.length;
      unsynced += chunk.length;
      // Flushed to disk while the transfer goes on, one at a time: the fsync before the final
      // link (download.ts finish) then finds little left, instead of the whole file in the cache.
      if (unsynced >= SYNC_EVERY_BYTES && !syncing && fd !== undefined && !out.closed) {
        unsynced = 0;
        syncing = true;
        fdatasync(fd, () => (syncing = false)); // an error shows in that final fsync
      }
      o.hash?.update(chunk);
      o.onProgress?.(received);
      const end = o.offset + received;
      // One 'data' event may hold several records: the first one that fills the write queue
      // starts the wait for the disk; the others join it (one timer, one 'drain' listener).
      const written = o.onWritten && ((err: Error | null | undefined) => err || o.onWritten!(end));
      if (!out.write(chunk, written) && diskStall === undefined) {
        // Our disk is behind, not the peer: while we do not read, its silence is not idleness.
        // The wait for the disk has its own, longer bound.
        socket.pause();
        socket.setTimeout(0);
        diskStall = setTimeout(() => fail(`cannot write ${o.partPath}: the disk took over ${DISK_STALL_MS / 1000} s`), DISK_STALL_MS);
        out.once('drain', () => {
          clearTimeout(diskStall);
          diskStall = undefined;
          if (settled) return;
          socket.setTimeout(idle);
          socket.resume();
        });
      }
    };
    const onReply = (plaintext: Buffer) => {
      const reply = decodeTcpReply(plaintext);
      if (!reply) return fail('peer sent a malformed TCP reply');
      if (reply.status !== TcpStatus.ok) return fail(tcpRefusal(reply.status));
      if (reply.count !== o.count) return fail(`peer announced ${reply.count} bytes, expected ${o.count}`);
      replied = true;
    };
    const onChunk = (chunk: Buffer) => {
      if (settled) return;
      const fault = records.push(chunk, (plaintext) => {
        if (!replied) onReply(joined(plaintext));
        else for (const piece of plaintext) onBody(piece);
        return !settled;
      });
      // The length is the record's associated data: one below 17 is a record that cannot authenticate.
      if (fault) tampered(fault);
    };
    socket.on('end', () => {
      if (settled) return;
      if (!replied || received !== o.count || records.buffered > 0) {
        // Ended inside a record claiming more than the owner announced: its length was damaged on
        // the way (an owner that stops early leaves an honest length behind).
        const length = records.pendingLength;
        if (length !== null && length - TCP_TAG_BYTES > (replied ? o.count - received : TCP_REPLY_BYTES)) return tampered('badLength');
        return fail(`connection closed after ${received} of ${o.count} bytes`);
      }
      settled = true;
      // The end of the stream can come while we wait for the disk, and an ended write stream
      // never says 'drain': the disk timer is cleared here, or it would hold the process 60 s.
      clearTimeout(diskStall);
      out.end(() => resolve({ bytes: received }));
    });
    socket.on('close', () => {
      if (!settled) fail(replied ? `connection closed after ${received} of ${o.count} bytes` : 'peer refused the transfer ticket (unknown, expired or used), or closed the connection');
    });
  });
}

function tcpRefusal(status: number): string {
  if (status === TcpStatus.badTicket) return 'peer refused the transfer ticket (unknown, expired or used)';
  if (status === TcpStatus.badVersion) return 'peer does not speak this TCP transfer version';
  if (status === TcpStatus.internal) return 'peer could not serve the file (it changed on disk or cannot be read)';
  return `peer refused the transfer (status ${status})`;
}

/**
 * The requester's TCP connection for a transfer of session `o.sessionId` on `o.conn` (PROTOCOL.md
 * 5): it sends the hello once connected. Aborting, `idleMs` without data and a socket error each
 * go to `fail`, which must destroy the socket.
 */
export function transferSocket(o: { conn: SecureConnection; sessionId: number; signal?: AbortSignal }, idleMs: number, fail: (why: string) => void, onread?: net.OnReadOpts): net.Socket {
  const socket = net.connect({ host: o.conn.remote.address, port: o.conn.remote.port, noDelay: true, ...(onread ? { onread } : {}) });
  const onAbort = () => fail('interrupted');
  if (o.signal?.aborted) queueMicrotask(onAbort);
  else o.signal?.addEventListener('abort', onAbort, { once: true });
  socket.once('close', () => o.signal?.removeEventListener('abort', onAbort));
  socket.setTimeout(idleMs, () => fail(`no data from peer for ${Math.round(idleMs / 1000)} s (idle timeout)`));
  socket.on('error', (err) => fail(`connection to peer failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
  socket.on('connect', () => {
    const head = encodeTcpHelloHead(o.conn.remoteIndex, o.sessionId);
    socket.write(Buffer.concat([head, new Sealer(o.conn.tcpKeys(o.sessionId).requesterToOwner).seal(0, head)]));
  });
  return socket;
}
