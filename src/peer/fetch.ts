// Fetching one file from a named peer: look it up, ask for its list, request the file over TCP
// or UDP, write the .part, verify, link into place. Used by `get` and the interactive loop.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { forbidden } from '../control/client';
import type { Semaphore } from '../core/async';
import { P2pError, userMessage } from '../core/errors';
import { TRAILING_HASH_MIN_BYTES, TrailingFileHash } from '../core/trailing-hash';
import { ensureRoom, finish, openPart, verifyPart } from '../transfer/download';
import { shownName, unusableName } from '../transfer/local-names';
import { fetchOverTcp, TcpAuthError } from '../transfer/tcp-client';
import { GetStatus, type ListEntry, type TransportName } from '../wire/control';
import { isValidSharedName } from '../wire/shared-file';
import type { Route } from './route';
import { openSession, type Session, type SessionOptions } from './session';
import { udpTransport } from './udp';

export type Via = 'auto' | TransportName;
export type { Route };

export interface FetchResult {
  name: string;
  size: number;
  sha256: string;
  via: TransportName;
  route: Route;
  path: string;
  seconds: number;
  /** Bytes that crossed the wire (less than size when a .part was resumed). */
  bytesTransferred: number;
  resumedFrom: number;
}

/** A TCP transfer whose records fail authentication is resumed this many times, then given up. */
const TAMPERED_RETRIES = 3;
/**
 * An owner that answers `busy` is asked again for this long before the fetch fails: it gives
 * each requester key a few slots (README "Limits of a peer"), so several fetches at once from
 * one requester take turns rather than fail. First wait, and the longest (each one doubles).
 */
export const BUSY_RETRY_MS = 10_000;
const BUSY_FIRST_WAIT_MS = 250;
const BUSY_MAX_WAIT_MS = 2_000;

/** How one listed file is fetched on an open session. */
export interface EntryFetchOptions {
  /** The owner's name, for messages. */
  peer: string;
  via: Via;
  /** The folder it is saved in. */
  downloads: string;
  onStart?: (info: { entry: ListEntry; via: TransportName; offset: number }) => void;
  /** Bytes of the file at the destination so far, resumed prefix included. */
  onProgress?: (bytesDone: number) => void;
  signal?: AbortSignal;
  /**
   * Held from the GET until the bytes are in, not while the .part is opened, verified or synced:
   * a set fetches more files at once than the owner has slots for, their disk work overlapping
   * the others' transfers.
   */
  transferGate?: Semaphore;
  /** The caller checked free space for all it fetches (a set, once): not again per file. */
  roomChecked?: boolean;
}

export interface FetchOptions extends SessionOptions, EntryFetchOptions {
  file: string;
}

/** How a file travels when the user does not say: images over UDP (README "Command reference"). */
export function defaultVia(entry: Pick<ListEntry, 'kind'>): TransportName {
  return entry.kind === 'image' ? 'udp' : 'tcp';
}

/** A peer's shared files and its fingerprint (one session). */
export async function listFiles(o: SessionOptions): Promise<{ files: ListEntry[]; fingerprint: string }> {
  const session = await openSession(o);
  try {
    return { files: await session.control.list(session.conn, o.peer), fingerprint: session.fingerprint };
  } finally {
    await session.close();
  }
}

export async function fetchFile(o: FetchOptions): Promise<FetchResult> {
  if (!isValidSharedName(o.file)) throw new P2pError('NO_SUCH_FILE', `no such file on ${o.peer}: '${shownName(o.file, 200)}'`);
  // Refused before anything touches the disk (or the network): see transfer/local-names.ts.
  const unusable = unusableName(o.file);
  if (unusable) throw new P2pError('NO_SUCH_FILE', `will not fetch '${shownName(o.file)}' from ${o.peer}: ${unusable}`);
  // One session (one UDP socket, one handshake) for the whole exchange (PROTOCOL.md section 2).
  const session = await openSession(o);
  try {
    // Only the entry wanted (not the whole list), with its digest: the owner hashes it first if
    // it had not come to it yet (PROTOCOL.md 4.2).
    const listed = await session.control.entry(session.conn, o.peer, o.file, o.signal ? { signal: o.signal } : {});
    if (!listed) throw new P2pError('NO_SUCH_FILE', `no such file on ${o.peer}: '${shownName(o.file, 200)}'`);
    return await fetchListed(session, o, listed);
  } finally {
    await session.close();
  }
}

/**
 * Fetches `listed` (an entry of the owner's list) into `o.downloads` on an open session, asking
 * again while the owner is busy, when the file changed since it was listed, or when TCP records
 * failed authentication.
 */
export async function fetchListed(session: Session, o: EntryFetchOptions, listed: ListEntry): Promise<FetchResult> {
  // An entry listed before the owner hashed it has no digest yet: asked for by name, it gets one.
  let entry = listed.sha256 === '' ? await digestOf(session, o, listed.name) : listed;
  let changed = 0;
  let tampered = 0;
  let busySince: number | undefined;
  let busyWait = BUSY_FIRST_WAIT_MS;
  for (;;) {
    let res: FetchResult | 'changed' | 'busy';
    try {
      res = await fetchEntry(o, session, entry);
    } catch (err) {
      // Records that failed authentication were never written: the .part holds only what the
      // owner sent, so a fresh GET resumes from it (PROTOCOL.md section 5).
      if (err instanceof P2pError && err.cause instanceof TcpAuthError && tampered++ < TAMPERED_RETRIES) continue;
      throw err;
    }
    if (res === 'busy') {
      busySince ??= Date.now();
      if (Date.now() - busySince >= BUSY_RETRY_MS) throw refusal(GetStatus.busy, o.peer, entry.name);
      // Jittered, so that fetches refused together do not all come back together.
      await sleep(busyWait * (0.75 + Math.random() / 2), undefined, o.signal ? { signal: o.signal } : {}).catch(() => {
        throw new P2pError('ABORTED', `interrupted while ${o.peer} was busy: ${entry.name} not fetched`);
      });
      busyWait = Math.min(BUSY_MAX_WAIT_MS, busyWait * 2);
      continue;
    }
    if (res !== 'changed') return res;
    // The owner's list shows the digest of its last hashing; a file edited since is refused as
    // 'changed' by a GET carrying that digest, and that GET made the owner re-hash it. So the
    // entry asked for again has the new digest: ask once more before telling the user.
    if (++changed === 2) throw refusal(GetStatus.changed, o.peer, entry.name);
    entry = await digestOf(session, o, entry.name);
  }
}

/** The owner's entry for `name` with its digest (PROTOCOL.md 4.2: EXACT); NO_SUCH_FILE when gone. */
async function digestOf(session: Session, o: EntryFetchOptions, name: string): Promise<ListEntry> {
  const entry = await session.control.entry(session.conn, o.peer, name, o.signal ? { signal: o.signal } : {});
  if (!entry) throw new P2pError('NO_SUCH_FILE', `no such file on ${o.peer}: '${shownName(name, 200)}'`);
  return entry;
}

/** Requests `entry` and moves it into the .part, verified and linked; 'changed' or 'busy' when refused so. */
async function fetchEntry(o: EntryFetchOptions, session: Session, entry: ListEntry): Promise<FetchResult | 'changed' | 'busy'> {
  const { endpoint, conn, control } = session;
  // TCP reaches only an owner reached directly: a NAT's hole is punched for UDP, a relay carries UDP.
  const via = o.via === 'auto' ? (session.route === 'direct' ? defaultVia(entry) : 'udp') : o.via;
  if (via === 'tcp' && session.route !== 'direct') {
    throw new P2pError('FAILED', `${o.peer} is reached ${session.route === 'punched' ? 'through its NAT' : "through the registry's relay"}, where TCP cannot go; use --via udp or auto`);
  }
  const udp = via === 'udp' ? udpTransport(endpoint) : undefined;
  if (!o.roomChecked) await ensureRoom(o.downloads, entry.name, entry.size, entry.sha256);
  const part = await openPart(o.downloads, entry.name, entry.size, entry.sha256);
  const started = Date.now();
  let udpDone: Promise<{ sha256?: string }> | undefined;
  let releaseGate: (() => void) | undefined;
  let behind: TrailingFileHash | undefined; // stopped in finally, whatever happened
  try {
    const progress = o.onProgress ? (n: number) => o.onProgress!(part.offset + n) : undefined;
    const count = entry.size - part.offset;
    // UDP data may arrive before the GET answer: the receiver is listening first.
    if (udp) await part.markUnordered();
    releaseGate = await o.transferGate?.acquire();
    // Stopped while it waited for its turn (the owner went offline, Ctrl+C): no GET goes out. Each
    // would otherwise wait out its own 3.5 s for an owner known to be gone, four at a time.
    if (o.signal?.aborted) throw new P2pError('ABORTED', `interrupted: ${entry.name} not fetched`);
    // The path MTU search's answer (PROTOCOL.md 6.1), before the ID: nothing waits between ID and GET.
    const maxPayload = via === 'udp' ? await session.udpMaxPayload(entry.size - part.offset) : 0;
    // Taken just before the GET goes out, so that GETs sent at once leave in the order of their IDs.
    const sessionId = session.nextSessionId();
    // A large file is hashed by a worker reading behind the writes, its prefix first when resumed
    // (the hole-free prefix on disk, over UDP); a small whole one as its chunks arrive, so it need
    // not be read again (a small resumed one is, by verifyPart).
    const trailing = entry.size >= TRAILING_HASH_MIN_BYTES ? new TrailingFileHash(part.path) : undefined;
    behind = trailing;
    trailing?.advance(part.offset);
    const onPrefixOnDisk = trailing && ((end: number) => trailing.advance(end));
    const hashInline = !trailing && part.offset === 0;
    udpDone = udp?.receive({
      conn, sessionId, partPath: part.path, offset: part.offset, size: entry.size, maxPayload,
      hash: hashInline,
      ...(onPrefixOnDisk ? { onPrefixOnDisk } : {}),
      ...(progress ? { onProgress: progress } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    udpDone?.catch(() => {}); // judged below; never an unhandled rejection
    const answer = await control.get(conn, o.peer, {
      transport: via,
      sessionId,
      offset: part.offset,
      expectedSha256: entry.sha256,
      maxPayload,
      name: entry.name,
    }, o.signal).catch((err) => {
      udp?.cancel(sessionId);
      throw err;
    });
    if (answer.status !== GetStatus.ok) {
      udp?.cancel(sessionId);
      if (answer.status === GetStatus.changed) return 'changed';
      if (answer.status === GetStatus.busy) return 'busy';
      throw refusal(answer.status, o.peer, entry.name);
    }
    // Only now: a request refused as 'changed' is asked again with another size and digest.
    o.onStart?.({ entry, via, offset: part.offset });
    let written: string | undefined;
    if (via === 'tcp') {
      // A file over TCP arrives in order: a small whole one is hashed as it is written.
      const hash = hashInline ? createHash('sha256') : undefined;
      await fetchOverTcp({
        conn, sessionId, partPath: part.path, offset: part.offset, count,
        ...(hash ? { hash } : {}),
        ...(onPrefixOnDisk ? { onWritten: onPrefixOnDisk } : {}),
        ...(progress ? { onProgress: progress } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      written = hash?.digest('hex');
    } else {
      written = (await udpDone)?.sha256;
    }
    written ??= await trailing?.digest(entry.size);
    releaseGate?.();
    if (!(await verifyPart(part.path, entry.sha256, written))) {
      throw new P2pError('INTEGRITY', `integrity check failed for ${entry.name}: SHA-256 differs from the owner's; the partial file was removed`);
    }
    const path = await finish(part.path, o.downloads, entry.name);
    return {
      name: entry.name,
      size: entry.size,
      sha256: entry.sha256,
      via,
      route: session.route,
      path,
      seconds: (Date.now() - started) / 1000,
      bytesTransferred: count,
      resumedFrom: part.offset,
    };
  } catch (err) {
    if (err instanceof P2pError) throw err;
    await udpDone?.catch(() => {});
    const kept = await part.release();
    if (o.signal?.aborted) {
      throw new P2pError('ABORTED', `interrupted: ${entry.name} not finished; ${kept ? 'the partial file is kept, run again to resume' : 'nothing was saved'}`, { cause: err });
    }
    throw new P2pError('FAILED', `transfer of ${entry.name} from ${o.peer} failed: ${userMessage(err)} (${kept ? 'partial file kept; run again to resume' : 'nothing was saved'})`, { cause: err });
  } finally {
    behind?.close();
    await udpDone?.catch(() => {}); // a cancelled receive first cuts the .part to its hole-free prefix
    releaseGate?.();
    await part.release();
  }
}

function refusal(status: GetStatus, peer: string, name: string): P2pError {
  switch (status) {
    case GetStatus.notFound:
      return new P2pError('NO_SUCH_FILE', `no such file on ${peer}: '${name}'`);
    case GetStatus.busy:
      return new P2pError('BUSY', `peer '${peer}' is busy; try again in a moment`);
    case GetStatus.changed:
      return new P2pError('FAILED', `${name} changed on ${peer} while being fetched; run again`);
    case GetStatus.forbidden:
      return forbidden(peer);
    case GetStatus.badRequest:
      return new P2pError('FAILED', `peer '${peer}' refused the request as malformed (incompatible version?)`);
    default:
      return new P2pError('FAILED', `peer '${peer}' could not serve ${name} (status ${status})`);
  }
}
