// Fetching several files from one owner as one job (README "Folders and many files"): one
// lookup, one session, the owner's list read under each NAME, files already there skipped,
// the rest fetched a few at a time so the link never idles between them, every one verified.
import { setMaxListeners } from 'node:events';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { mapLimit, Semaphore } from '../core/async';
import { sha256File } from '../core/hash';
import { P2pError, type ErrorCode, userMessage } from '../core/errors';
import { ensureRoomForSet } from '../transfer/download';
import { numberedName, safeBaseName, shownName, unusableName } from '../transfer/local-names';
import { isValidSharedName } from '../wire/shared-file';
import type { ListEntry } from '../wire/control';
import { MAX_BATCH_FILE_BYTES } from '../wire/tcp-batch';
import { fetchBatch } from './fetch-batch';
import { fetchListed, type FetchResult, type Route, type Via } from './fetch';
import { globBase, globToRegExp, isGlob, isSingleFile, selectFiles, type Pick } from './select';
import { openSession, type Session, type SessionOptions } from './session';

/**
 * Transfers at once: an owner gives each requester key 4 transfer slots (README "Limits of a
 * peer"). More files than that are under way, opening, verifying and syncing theirs meanwhile:
 * on small files that disk work, not the link, is most of the time.
 */
export const SET_TRANSFERS = 4;
export const SET_PARALLEL = 16;
/** Destinations checked at once for a file already there. */
const PRESENT_CHECKS = 16;
/** Small files worth one batch (PROTOCOL.md 5.1): fewer go one by one, as fast. */
const MIN_BATCH = 2;

/** Errors after which no other file of the set can succeed: the set stops. */
const SET_FATAL: ReadonlySet<ErrorCode> = new Set(['ABORTED', 'OFFLINE', 'FORBIDDEN', 'KEY_MISMATCH', 'HANDSHAKE_FAILED', 'INCOMPATIBLE_VERSION']);

export type FileStatus = 'fetched' | 'present' | 'failed';

export interface FileOutcome {
  name: string;
  size: number;
  sha256: string;
  status: FileStatus;
  /** Where it is (fetched, or already there with the same SHA-256). */
  path?: string;
  via?: FetchResult['via'];
  seconds?: number;
  bytesTransferred?: number;
  resumedFrom?: number;
  error?: { code: ErrorCode; message: string };
}

export interface SetResult {
  peer: string;
  fingerprint: string;
  route: Route;
  files: FileOutcome[];
  /** Bytes of the files fetched (present ones not counted) and bytes that crossed the wire. */
  bytes: number;
  bytesTransferred: number;
  seconds: number;
  /** Set when the whole set stopped early (interrupted, owner gone, …): why. */
  stopped?: { code: ErrorCode; message: string };
}

export interface SetPlan {
  /** Files to fetch, and their bytes. */
  files: number;
  bytes: number;
  /** Files already at their destination with the same SHA-256. */
  present: number;
}

export interface GetOptions extends SessionOptions {
  names: string[];
  via: Via;
  downloads: string;
  parallel?: number;
  /** A single file (one NAME naming one file exactly): it starts. */
  onSingleStart?: (info: { entry: ListEntry; offset: number }) => void;
  /** A set: what it will fetch, once the destinations are checked. */
  onPlan?: (plan: SetPlan) => void;
  /** Bytes done: of the single file, or of the whole set (files fetched and in flight). */
  onProgress?: (bytesDone: number) => void;
  /** A set: one file ended (fetched, present, or failed). */
  onFile?: (outcome: FileOutcome, done: number) => void;
}

export type GetResult = { single: FetchResult } | { set: SetResult };

/**
 * `get PEER NAME...`: one file named exactly is fetched as it always was (saved under its last
 * segment, a `name (1).ext` beside an existing file, one result); anything else is a set.
 */
export async function getFiles(o: GetOptions): Promise<GetResult> {
  checkNames(o.peer, o.names);
  const session = await openSession(o);
  try {
    const single = (entry: ListEntry) => fetchListed(session, { ...o, onStart: ({ entry: e, offset }) => o.onSingleStart?.({ entry: e, offset }) }, entry);
    if (o.names.length === 1 && !isGlob(o.names[0]!)) {
      // One file named exactly: asked for by name (its digest too, PROTOCOL.md 4.2), not listed.
      const entry = await session.control.entry(session.conn, o.peer, o.names[0]!, o.signal ? { signal: o.signal } : {});
      if (entry) return { single: await single(entry) };
    }
    const entries = await listFor(session, o.peer, o.names);
    // A name holding a glob character is still a name when a file has it exactly (select.ts).
    if (isSingleFile(entries, o.names)) return { single: await single(entries.find((e) => e.name === o.names[0])!) };
    const { picks, unmatched } = selectFiles(entries, o.names);
    if (unmatched.length === 1 && !isGlob(unmatched[0]!)) {
      throw new P2pError('NO_SUCH_FILE', `no such file or folder on ${o.peer}: '${shownName(unmatched[0]!, 200)}'`);
    }
    if (unmatched.length > 0) {
      const shown = unmatched.map((n) => `'${shownName(n, 200)}'`).join(', ');
      throw new P2pError('NO_SUCH_FILE', `nothing on ${o.peer} matches ${shown}`);
    }
    return { set: await fetchPicks(session, o, picks) };
  } finally {
    await session.close();
  }
}

/** Past this many NAMEs, the whole list is read once rather than a listing per NAME. */
const MAX_PREFIX_LISTINGS = 16;

/**
 * What the owner lists under each NAME (PROTOCOL.md 4.2: a prefix selects one run of its sorted
 * list): a name or folder under its own name, a glob under the folders it starts in.
 */
async function listFor(session: Session, peer: string, names: string[]): Promise<ListEntry[]> {
  const prefixes = [...new Set(names.map((n) => (isGlob(n) ? globBase(n) : n.replace(/\/+$/, ''))))];
  if (prefixes.includes('') || prefixes.length > MAX_PREFIX_LISTINGS) return session.control.list(session.conn, peer);
  const byName = new Map<string, ListEntry>();
  for (const prefix of prefixes) for (const e of await session.control.list(session.conn, peer, { prefix })) byName.set(e.name, e);
  return [...byName.values()];
}

/** Refuses, before any network, NAMEs no owner could match and globs that do not parse. */
function checkNames(peer: string, names: string[]): void {
  for (const name of names) {
    const unusable = unusableName(name);
    if (unusable) throw new P2pError('NO_SUCH_FILE', `will not fetch '${shownName(name)}' from ${peer}: ${unusable}`);
    if (isGlob(name)) {
      try {
        globToRegExp(name);
      } catch {
        throw new P2pError('USAGE', `'${shownName(name)}' is not a pattern this understands (see get --help)`);
      }
    } else if (!isValidSharedName(name.replace(/\/+$/, ''))) {
      throw new P2pError('NO_SUCH_FILE', `no such file on ${peer}: '${shownName(name, 200)}'`);
    }
  }
}

async function fetchPicks(session: Session, o: GetOptions, picks: Pick[]): Promise<SetResult> {
  const started = Date.now();
  const outcomes = new Map<Pick, FileOutcome>();
  const folders = new FolderNames();
  // Checked several at once: a large set is mostly these look-ups when nothing is there yet.
  const present = await mapLimit(picks, PRESENT_CHECKS, (pick) => {
    // An entry the owner has not hashed yet (digest '') is asked for by name, once, and only if
    // a file of its size is there; the fetch then starts from the entry with its digest.
    let asked: Promise<ListEntry> | undefined;
    const digest = async () => {
      if (pick.entry.sha256 === '') {
        asked ??= session.control.entry(session.conn, o.peer, pick.entry.name, o.signal ? { signal: o.signal } : {}).then((e) => e ?? pick.entry);
        pick.entry = await asked;
      }
      return pick.entry.sha256;
    };
    return alreadyThere(o.downloads, pick, digest, folders);
  });
  const todo: Pick[] = [];
  picks.forEach((pick, i) => {
    const early = present[i];
    if (early) outcomes.set(pick, early);
    else todo.push(pick);
  });
  const plannedBytes = todo.reduce((n, p) => n + p.entry.size, 0);
  await ensureRoomForSet(o.downloads, todo.length, plannedBytes);
  const transferGate = new Semaphore(SET_TRANSFERS);
  o.onPlan?.({ files: todo.length, bytes: plannedBytes, present: picks.length - todo.length });

  // Stopping the set (Ctrl+C, or an error no other file can get past) stops the files in flight.
  const stop = new AbortController();
  // Every file under way listens on it (its transfer, its waits): more than Node's default 10.
  setMaxListeners(SET_PARALLEL * 8, stop.signal);
  const onAbort = () => stop.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let stopped: SetResult['stopped'];
  let finishedBytes = 0;
  let ended = 0;
  const inFlight = new Map<Pick, number>();
  const report = () => {
    if (!o.onProgress) return;
    let n = finishedBytes;
    for (const b of inFlight.values()) n += b;
    o.onProgress(n);
  };
  for (const outcome of outcomes.values()) o.onFile?.(outcome, ++ended); // the ones already there first

  const settle = (pick: Pick, outcome: FileOutcome) => {
    finishedBytes += pick.entry.size;
    outcomes.set(pick, outcome);
    if (outcome.error && SET_FATAL.has(outcome.error.code) && !stopped) {
      stopped = outcome.error;
      stop.abort();
    }
    o.onFile?.(outcome, ++ended);
    report();
  };
  /** Fetches the picks of `queue` one file each, SET_PARALLEL at a time. */
  const fetchAlone = async (queue: Pick[]) => {
    let next = 0;
    const worker = async () => {
      while (!stopped && next < queue.length) {
        const pick = queue[next++]!;
        inFlight.set(pick, 0);
        const outcome = await fetchPick(session, o, pick, stop.signal, transferGate, (n) => {
          inFlight.set(pick, n);
          report();
        });
        inFlight.delete(pick);
        settle(pick, outcome);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.parallel ?? SET_PARALLEL, queue.length)) }, worker));
  };
  // Small files travel together on one TCP stream where TCP goes (PROTOCOL.md 5.1); the rest,
  // and whatever the batch leaves, one by one beside it.
  const batchable = (p: Pick) => session.route === 'direct' && o.via !== 'udp' && p.entry.size <= MAX_BATCH_FILE_BYTES && !refusedName(p.entry.name);
  const small = todo.filter(batchable);
  const batched = small.length >= MIN_BATCH ? small : [];
  const alone = batched.length > 0 ? todo.filter((p) => !batchable(p)) : todo;
  const inBatch = async () => {
    const left = await fetchBatch(session, batched, {
      peer: o.peer,
      signal: stop.signal,
      transferGate,
      dirOf: (pick) => destinationDir(o.downloads, pick),
      onDone: (pick, r) =>
        settle(pick, r.kind === 'saved'
          ? { ...described(pick.entry), status: 'fetched', path: r.path, via: 'tcp', seconds: r.seconds, bytesTransferred: pick.entry.size, resumedFrom: 0 }
          : { ...described(pick.entry), status: 'failed', error: { code: r.code, message: r.message } }),
    }).catch((err: unknown) => {
      if (!stopped) stopped = { code: err instanceof P2pError ? err.code : 'FAILED', message: userMessage(err) };
      stop.abort();
      return [];
    });
    await fetchAlone(left);
  };
  try {
    await Promise.all([fetchAlone(alone), batched.length > 0 ? inBatch() : undefined]);
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  if (o.signal?.aborted && !stopped) stopped = { code: 'ABORTED', message: 'interrupted' };
  const files = picks.map(
    (p) =>
      outcomes.get(p) ?? {
        ...described(p.entry),
        status: 'failed' as const,
        error: { code: stopped?.code ?? 'FAILED', message: `not fetched: ${stopped?.message ?? 'the set stopped'}` },
      },
  );
  const fetched = files.filter((f) => f.status === 'fetched');
  return {
    peer: o.peer,
    fingerprint: session.fingerprint,
    route: session.route,
    files,
    bytes: fetched.reduce((n, f) => n + f.size, 0),
    bytesTransferred: fetched.reduce((n, f) => n + (f.bytesTransferred ?? 0), 0),
    seconds: (Date.now() - started) / 1000,
    ...(stopped ? { stopped } : {}),
  };
}

async function fetchPick(session: Session, o: GetOptions, pick: Pick, signal: AbortSignal, transferGate: Semaphore, onProgress: (n: number) => void): Promise<FileOutcome> {
  const { entry } = pick;
  const unusable = refusedName(entry.name);
  if (unusable) return { ...described(entry), status: 'failed', error: { code: 'NO_SUCH_FILE', message: `will not fetch '${shownName(entry.name)}': ${unusable}` } };
  if (signal.aborted) return { ...described(entry), status: 'failed', error: { code: 'ABORTED', message: 'not fetched: interrupted' } };
  try {
    const res = await fetchListed(session, { peer: o.peer, via: o.via, downloads: destinationDir(o.downloads, pick), onProgress, signal, transferGate, roomChecked: true }, entry);
    return { ...described(entry), sha256: res.sha256, status: 'fetched', path: res.path, via: res.via, seconds: res.seconds, bytesTransferred: res.bytesTransferred, resumedFrom: res.resumedFrom };
  } catch (err) {
    const code: ErrorCode = err instanceof P2pError ? err.code : 'FAILED';
    return { ...described(entry), status: 'failed', error: { code, message: userMessage(err) } };
  }
}

/**
 * Why an owner's name is not fetched, or undefined: it must be one a peer could share and one
 * this disk can take (transfer/local-names.ts); the owner's names are someone else's text.
 */
function refusedName(name: string): string | undefined {
  return isValidSharedName(name) ? unusableName(name) : 'it is not a name a peer may share';
}

function described(e: ListEntry): { name: string; size: number; sha256: string } {
  return { name: e.name, size: e.size, sha256: e.sha256 };
}

/** The folder a pick is saved in: --downloads and the folders of its saveAs. */
function destinationDir(downloads: string, pick: Pick): string {
  const slash = pick.saveAs.lastIndexOf('/');
  return slash < 0 ? downloads : join(downloads, ...pick.saveAs.slice(0, slash).split('/'));
}

/**
 * The outcome of a pick already at its destination: its name, or one of the `name (n).ext` an
 * earlier run may have had to take, holding a file of the same size and SHA-256. Only regular
 * files count, and only names up to the first one free (where a fetch would save it now).
 * `names` lists the folder once (a set of 10,000 files in 100 folders is 100 reads, not 10,000
 * look-ups); only a name it holds is looked at.
 */
async function alreadyThere(downloads: string, pick: Pick, digest: () => Promise<string>, names: FolderNames): Promise<FileOutcome | undefined> {
  if (refusedName(pick.entry.name)) return undefined;
  const dir = destinationDir(downloads, pick);
  const base = safeBaseName(pick.saveAs);
  const there = await names.of(dir);
  for (let i = 0; i < 10_000; i++) {
    const name = numberedName(base, i);
    if (!there.has(name.normalize('NFC'))) return undefined;
    const path = join(dir, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st) return undefined;
    if (!st.isFile() || st.size !== pick.entry.size) continue;
    const want = await digest();
    if (want !== '' && (await sha256File(path).catch(() => '')) === want) return { ...described(pick.entry), sha256: want, status: 'present', path };
  }
  return undefined;
}

/**
 * The names in each destination folder, read once per folder (none when it does not exist yet),
 * in NFC: a file system that stores names decomposed (macOS) still finds them when looked up.
 */
class FolderNames {
  private readonly read = new Map<string, Promise<ReadonlySet<string>>>();

  of(dir: string): Promise<ReadonlySet<string>> {
    let names = this.read.get(dir);
    if (!names) {
      names = readdir(dir).then((list) => new Set(list.map((n) => n.normalize('NFC'))), () => new Set<string>());
      this.read.set(dir, names);
    }
    return names;
  }
}
