// Many small files on one TCP stream, requester side (PROTOCOL.md 5.1): the hello, then WANT
// records asking for files a window at a time, and each file's answer in the order asked:
// authenticated record by record, whole, and checked against its SHA-256 before the caller sees
// a byte of it.
import { createHash, type Hash } from 'node:crypto';
import { Opener, Sealer } from '../crypto/transport';
import type { SecureConnection } from '../net/connection';
import { decodeTcpReply, MAX_RECORD_PLAINTEXT, TcpStatus } from '../wire/tcp';
import { decodeFileHead, encodeWant, FILE_HEAD_BYTES, MAX_BATCH_FILE_BYTES, MAX_BATCH_PENDING, WANT_HEAD_BYTES, wantEntryBytes } from '../wire/tcp-batch';
import { joined, SealedRecords } from './sealed-records';
import { sealRecord } from './tcp-records';
import { TcpAuthError, tcpRecordFailures, transferSocket } from './tcp-client';

export interface BatchFile {
  name: string;
  size: number;
  /** Hex, as listed; '' when the owner had not hashed it yet (then any version is taken). */
  sha256: string;
}

/** One file's answer: its bytes (authenticated, whole, verified), the owner's refusal (a GetStatus), or bytes that did not verify. */
/** `startedAt` (Date.now()) is when the file's head arrived: its own time starts there, not at the batch's. */
export type BatchAnswer = { kind: 'file'; data: Buffer[]; sha256: string; startedAt: number } | { kind: 'refused'; status: number } | { kind: 'corrupt'; why: string };

export interface BatchFetchOptions {
  /** The session the batch GET was made on. */
  conn: SecureConnection;
  sessionId: number;
  files: readonly BatchFile[];
  /**
   * Called for each file in the order asked; the batch reads on while these promises settle, up
   * to MAX_SAVING of them (or MAX_SAVING_BYTES), then waits for them. A rejection ends the batch.
   */
  onAnswer(index: number, answer: BatchAnswer): Promise<void>;
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

/** Files asked for and not yet answered, at most (the owner holds up to MAX_BATCH_PENDING). */
const WINDOW = Math.min(512, MAX_BATCH_PENDING);
/** Answers handed to onAnswer and not yet settled (being saved), at most, and their bytes. */
const MAX_SAVING = 64;
const MAX_SAVING_BYTES = 16 * 1024 * 1024;
const DISK_STALL_MS = 60_000;

/**
 * Runs the batch: resolves once every file is answered and the owner ended the stream; rejects
 * on a damaged record (TcpAuthError: nothing of it was used), a broken stream, a timeout or an
 * abort. Files answered before that were handed to onAnswer; the others were not.
 */
export function fetchBatchOverTcp(o: BatchFetchOptions): Promise<void> {
  const idle = o.idleTimeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const keys = o.conn.tcpKeys(o.sessionId);
    const sealer = new Sealer(keys.requesterToOwner);
    const records = new SealedRecords(new Opener(keys.ownerToRequester), 0);
    const socket = transferSocket(o, idle, (why) => fail(why));
    let requesterNumber = 1; // record 0 is the hello's tag
    let asked = 0;
    let answered = 0;
    let replied = false;
    let settled = false;
    /** The file being received: its head said ok, and this many of its bytes are still to come. */
    let current: { index: number; remaining: number; pieces: Buffer[]; hash: Hash; sha256: string; startedAt: number } | undefined;
    let savingBytes = 0;
    let diskStall: NodeJS.Timeout | undefined;

    /** onAnswer calls not yet settled (files being saved): the batch ends only after them, failed or not. */
    const savingNow = new Set<Promise<void>>();
    const fail = (why: string | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(diskStall);
      socket.destroy();
      // A file still being saved must be done with before the caller fetches the rest alone
      // (the same .part would have two writers).
      void Promise.allSettled(savingNow).then(() => reject(typeof why === 'string' ? new Error(why) : why));
    };
    const tampered = (why: keyof typeof tcpRecordFailures) => {
      tcpRecordFailures[why]++;
      fail(new TcpAuthError());
    };

    // Asks for more while fewer than half the window is outstanding; "no more" after the last.
    let saidNoMore = false;
    const ask = () => {
      if (saidNoMore || asked - answered > WINDOW / 2) return;
      const records: Buffer[] = [];
      while (asked < o.files.length && asked - answered < WINDOW) {
        const batch = [];
        let bytes = WANT_HEAD_BYTES;
        while (asked < o.files.length && asked - answered < WINDOW && batch.length < 0xffff) {
          const f = o.files[asked]!;
          if (bytes + wantEntryBytes(f.name) > MAX_RECORD_PLAINTEXT) break;
          bytes += wantEntryBytes(f.name);
          batch.push({ name: f.name, sha256: f.sha256 === '' ? null : f.sha256 });
          asked++;
        }
        records.push(sealRecord(sealer, requesterNumber++, encodeWant(batch)));
      }
      if (asked === o.files.length && !saidNoMore) {
        saidNoMore = true;
        records.push(sealRecord(sealer, requesterNumber++, encodeWant([])));
      }
      socket.write(Buffer.concat(records));
    };

    const hand = (answer: BatchAnswer, bytes: number) => {
      const index = answered++;
      savingBytes += bytes;
      const saved = o.onAnswer(index, answer);
      savingNow.add(saved);
      saved.then(
        () => {
          savingNow.delete(saved);
          savingBytes -= bytes;
          if (diskStall !== undefined && savingNow.size < MAX_SAVING && savingBytes < MAX_SAVING_BYTES) {
            clearTimeout(diskStall);
            diskStall = undefined;
            if (settled) return;
            socket.setTimeout(idle);
            socket.resume();
          }
          finishIfDone();
        },
        (err: unknown) => {
          savingNow.delete(saved);
          fail(err instanceof Error ? err : new Error(String(err)));
        },
      );
      if (!settled) ask();
      if ((savingNow.size >= MAX_SAVING || savingBytes >= MAX_SAVING_BYTES) && diskStall === undefined) {
        // Our disk is behind, not the peer: while we do not read, its silence is not idleness.
        socket.pause();
        socket.setTimeout(0);
        diskStall = setTimeout(() => fail(`the disk took over ${DISK_STALL_MS / 1000} s to save what arrived`), DISK_STALL_MS);
      }
    };
    let ended = false;
    const finishIfDone = () => {
      if (settled || !ended || savingNow.size > 0) return;
      settled = true;
      resolve();
    };

    const onFileBytes = (piece: Buffer): boolean => {
      const c = current!;
      if (piece.length > c.remaining) return false;
      c.remaining -= piece.length;
      c.pieces.push(piece);
      c.hash.update(piece);
      if (c.remaining === 0) {
        current = undefined;
        const actual = c.hash.digest('hex');
        const expected = o.files[c.index]!.sha256;
        // The owner vouched for this digest (and, when we gave one, sends only that version).
        if (actual !== c.sha256 || (expected !== '' && expected !== c.sha256)) {
          hand({ kind: 'corrupt', why: `SHA-256 of ${o.files[c.index]!.name} differs from the owner's` }, 0);
        } else {
          hand({ kind: 'file', data: c.pieces, sha256: actual, startedAt: c.startedAt }, o.files[c.index]!.size);
        }
      }
      return true;
    };

    const onRecord = (plaintext: Buffer): string | undefined => {
      if (!replied) {
        const reply = decodeTcpReply(plaintext);
        if (!reply) return 'peer sent a malformed TCP reply';
        if (reply.status !== TcpStatus.ok) return `peer refused the batch (status ${reply.status})`;
        replied = true;
        ask();
        return undefined;
      }
      if (current) return onFileBytes(plaintext) ? undefined : 'peer sent more bytes than announced';
      if (answered >= asked) return 'peer answered a file that was not asked for';
      const head = decodeFileHead(plaintext);
      if (!head) return 'peer sent a malformed file head';
      if (head.status !== 0) {
        hand({ kind: 'refused', status: head.status }, 0);
        return undefined;
      }
      const wanted = o.files[answered]!;
      if (head.size > MAX_BATCH_FILE_BYTES || (wanted.sha256 !== '' && head.size !== wanted.size)) return `peer announced ${head.size} bytes for ${wanted.name}, expected ${wanted.size}`;
      current = { index: answered, remaining: head.size, pieces: [], hash: createHash('sha256'), sha256: head.sha256, startedAt: Date.now() };
      if (!onFileBytes(plaintext.subarray(FILE_HEAD_BYTES))) return 'peer sent more bytes than announced';
      return undefined;
    };

    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      const fault = records.push(chunk, (plaintext) => {
        const why = onRecord(joined(plaintext));
        if (why) fail(why);
        return !settled;
      });
      if (fault) tampered(fault);
    });
    socket.on('end', () => {
      if (settled) return;
      if (!replied || answered !== o.files.length || current || records.buffered > 0) {
        return fail(`connection closed after ${answered} of ${o.files.length} files`);
      }
      ended = true;
      clearTimeout(diskStall);
      finishIfDone();
    });
    socket.on('close', () => {
      if (!settled && !ended) fail(replied ? `connection closed after ${answered} of ${o.files.length} files` : 'peer refused the transfer ticket (unknown, expired or used), or closed the connection');
    });
  });
}
