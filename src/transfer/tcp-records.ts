// What both TCP streams of an owner share (PROTOCOL.md 5 and 5.1): sealing records, waiting for
// the socket to drain, and cutting a stream whose requester stopped reading.
import type net from 'node:net';
import type { Sealer } from '../crypto/transport';
import { encodeRecordHeader, TCP_TAG_BYTES } from '../wire/tcp';

/** Sealed records queued for the socket before the owner reads more: the disk runs ahead of the network, boundedly. */
export const SEALED_QUEUE_BYTES = 4 * 1024 * 1024;

/** One record: header, then the plaintext sealed under record number `n` (its nonce). */
export function sealRecord(sealer: Sealer, n: number, plaintext: Buffer): Buffer {
  return Buffer.concat(sealRecordParts(sealer, n, plaintext));
}

/** A record as its three pieces (header, ciphertext, tag), for a stream that writes them without joining them. */
export function sealRecordParts(sealer: Sealer, n: number, plaintext: Buffer): [Buffer, Buffer, Buffer] {
  const header = encodeRecordHeader(plaintext.length + TCP_TAG_BYTES);
  return [header, ...sealer.sealDetached(n, header, plaintext)];
}

/** Why a socket closed under us: its error (an idle timeout says so), or the requester hung up. */
export function closedError(socket: net.Socket): Error {
  return socket.errored ?? new Error('connection closed before the end');
}

/** Ends the socket; resolves once everything written is handed over, rejects when it closes first. */
export function endStream(socket: net.Socket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (socket.destroyed) return reject(closedError(socket));
    socket.once('close', () => reject(closedError(socket)));
    socket.end(() => resolve());
  });
}

/** Resolves once the socket wrote everything queued; rejects when it closes first. */
export function drained(socket: net.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      socket.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      socket.off('drain', onDrain);
      reject(closedError(socket));
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/**
 * Closes the stream when none of our writes completed for `idleMs` (the requester took nothing:
 * the socket buffers are full), or when everything was sent but the requester neither read it
 * all nor closed within `idleMs`. Not Node's socket timeout: it suppresses itself while a write
 * is pending, so a requester that stopped reading held its connection and slot twice as long.
 */
export function cutWhenStalled(socket: net.Socket, idleMs: number): void {
  // Bytes of writes that completed: written minus those still waiting (in flight or buffered).
  const completed = () => socket.bytesWritten - socket.writableLength;
  let seen = completed();
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const done = completed();
    // Nothing waiting to be written and not ended: we wait for our disk, not for the requester.
    if (done !== seen || (socket.writableLength === 0 && !socket.writableEnded)) {
      seen = done;
      last = now;
    } else if (now - last >= idleMs) {
      clearInterval(timer);
      socket.destroy(new Error(`requester took nothing for ${Math.round(idleMs / 1000)} s (idle timeout)`));
    }
  }, Math.min(1000, idleMs / 4));
  timer.unref();
  socket.once('close', () => clearInterval(timer));
}
