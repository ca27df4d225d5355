// The small files of a set on one TCP stream (PROTOCOL.md 5.1, README "Folders and many files"):
// one GET and one connection for all of them instead of one each, each file saved as it arrives
// (verified, synced, linked under a free name). What the batch cannot settle (an owner without
// batches, a file changed or its .part in use, a broken stream) is left to fetching files alone.
import { mkdir } from 'node:fs/promises';
import { forbidden } from '../control/client';
import type { Semaphore } from '../core/async';
import { type ErrorCode, P2pError, userMessage } from '../core/errors';
import { saveWhole } from '../transfer/download';
import { fetchBatchOverTcp, type BatchAnswer } from '../transfer/tcp-batch-client';
import { GetStatus } from '../wire/control';
import type { Pick } from './select';
import type { Session } from './session';

export type BatchOutcome = { kind: 'saved'; path: string; seconds: number } | { kind: 'failed'; code: ErrorCode; message: string };

export interface BatchOptions {
  peer: string;
  signal: AbortSignal;
  /** The requester's own transfer slots: the batch holds one while it runs. */
  transferGate: Semaphore;
  /** The folder a pick is saved in. */
  dirOf(pick: Pick): string;
  /** A pick the batch settled: saved, or failed in a way fetching it alone would not change. */
  onDone(pick: Pick, outcome: BatchOutcome): void;
}

/**
 * Fetches `picks` in one batch; returns those it did not settle, to be fetched alone. Throws
 * (P2pError) only what ends the whole set: interrupted, the owner gone or refusing this key.
 */
export async function fetchBatch(session: Session, picks: readonly Pick[], o: BatchOptions): Promise<Pick[]> {
  const release = await o.transferGate.acquire();
  const settled = new Set<number>();
  try {
    const sessionId = session.nextSessionId();
    const answer = await session.control.get(session.conn, o.peer, { transport: 'batch', sessionId, offset: 0, expectedSha256: null, maxPayload: 0, name: '' }, o.signal);
    if (answer.status === GetStatus.forbidden) throw forbidden(o.peer);
    // An owner of an older version refuses the request (bad_request), a busy one has no slot.
    if (answer.status !== GetStatus.ok) return [...picks];
    const dirs = new Map<string, Promise<unknown>>();
    const save = async (pick: Pick, answer: BatchAnswer): Promise<BatchOutcome | 'alone'> => {
      if (answer.kind === 'corrupt') return { kind: 'failed', code: 'INTEGRITY', message: `integrity check failed for ${pick.entry.name}: ${answer.why}` };
      if (answer.kind === 'refused') {
        if (answer.status === GetStatus.notFound) return { kind: 'failed', code: 'NO_SUCH_FILE', message: `no such file on ${o.peer}: '${pick.entry.name}'` };
        return 'alone'; // changed since listed, unreadable, too large: a single GET says why, or succeeds
      }
      const dir = o.dirOf(pick);
      let made = dirs.get(dir);
      if (!made) dirs.set(dir, (made = mkdir(dir, { recursive: true })));
      try {
        await made;
        const path = await saveWhole(dir, pick.entry.name, answer.sha256, answer.data);
        if (path === 'taken') return 'alone';
        if (pick.entry.sha256 === '') pick.entry = { ...pick.entry, sha256: answer.sha256 };
        return { kind: 'saved', path, seconds: (Date.now() - answer.startedAt) / 1000 };
      } catch (err) {
        return { kind: 'failed', code: 'FAILED', message: `cannot save ${pick.entry.name}: ${userMessage(err)}` };
      }
    };
    await fetchBatchOverTcp({
      conn: session.conn,
      sessionId,
      files: picks.map((p) => p.entry),
      signal: o.signal,
      onAnswer: async (i, answer) => {
        const outcome = await save(picks[i]!, answer);
        if (outcome === 'alone') return;
        settled.add(i);
        o.onDone(picks[i]!, outcome);
      },
    }).catch((err: unknown) => {
      if (o.signal.aborted) throw new P2pError('ABORTED', 'interrupted', { cause: err });
      // A broken or damaged stream: what it did not settle is fetched alone (resumable).
    });
  } finally {
    release();
  }
  return picks.filter((_, i) => !settled.has(i));
}
