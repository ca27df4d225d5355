// Fetching one file from a named peer: look it up, ask for its list, request the file over TCP
// or UDP, write the .part, verify, link into place. Used by `get` and the interactive loop.
import { randomInt } from 'node:crypto';
import { P2pError } from '../core/errors';
import type { RegistryClient } from '../registry/client';
import type { Connection, Remote } from '../net/connection';
import { Endpoint } from '../net/endpoint';
import { finish, openPart, verifyPart } from '../transfer/download';
import { fetchOverTcp } from '../transfer/tcp-client';
import { GetStatus, type ListEntry, type TransportName } from '../wire/control';
import { ControlClient } from '../control/client';
import { isValidSharedName } from '../wire/shared-file';
import { DEFAULT_MAX_PAYLOAD, udpTransport } from './udp';

export type Via = 'auto' | TransportName;

export interface FetchResult {
  name: string;
  size: number;
  sha256: string;
  via: TransportName;
  path: string;
  seconds: number;
  /** Bytes that crossed the wire (less than size when a .part was resumed). */
  bytesTransferred: number;
  resumedFrom: number;
}

export interface FetchOptions {
  registry: RegistryClient;
  peer: string;
  file: string;
  via: Via;
  downloads: string;
  onStart?: (info: { entry: ListEntry; via: TransportName; offset: number }) => void;
  onProgress?: (bytesDone: number) => void;
  /** Ctrl+C: ends the transfer cleanly (a UDP .part is cut to its hole-free prefix) and keeps the .part. */
  signal?: AbortSignal;
}

/** How a file travels when the user does not say: images over UDP (README "Command reference"). */
export function defaultVia(entry: Pick<ListEntry, 'kind'>): TransportName {
  return entry.kind === 'image' ? 'udp' : 'tcp';
}

/** Where to reach a peer: the registry's record. */
export async function locate(registry: RegistryClient, peer: string): Promise<Remote> {
  const rec = await registry.lookup(peer);
  return { address: rec.ip, port: rec.port };
}

/** A peer's shared files (one UDP exchange on a fresh socket). */
export async function listFiles(registry: RegistryClient, peer: string): Promise<ListEntry[]> {
  const to = await locate(registry, peer);
  const endpoint = await Endpoint.bind(0);
  try {
    return await new ControlClient(endpoint).list(endpoint.connect(to), peer);
  } finally {
    await endpoint.close();
  }
}

export async function fetchFile(o: FetchOptions): Promise<FetchResult> {
  if (!isValidSharedName(o.file)) throw new P2pError('NO_SUCH_FILE', `no such file on ${o.peer}: '${o.file}'`);
  const to = await locate(o.registry, o.peer);
  // One UDP socket and connection for the whole exchange (PROTOCOL.md section 2: NAT-ready).
  const endpoint = await Endpoint.bind(0);
  const conn = endpoint.connect(to);
  const release = conn.hold();
  try {
    const control = new ControlClient(endpoint);
    // The owner's list shows the digest of its last hashing; a file edited since is refused as
    // 'changed' by a GET carrying that digest, and that GET made the owner re-hash it. So one
    // fresh list has the new digest: ask once more before telling the user.
    for (let attempt = 1; ; attempt++) {
      const entry = (await control.list(conn, o.peer)).find((e) => e.name === o.file);
      if (!entry) throw new P2pError('NO_SUCH_FILE', `no such file on ${o.peer}: '${o.file}'`);
      const res = await fetchEntry(o, control, endpoint, conn, entry);
      if (res !== 'changed') return res;
      if (attempt === 2) throw refusal(GetStatus.changed, o.peer, entry.name);
    }
  } finally {
    release();
    await endpoint.close();
  }
}

/** Requests `entry` and moves it into the .part, verified and linked; 'changed' when refused so. */
async function fetchEntry(o: FetchOptions, control: ControlClient, endpoint: Endpoint, conn: Connection, entry: ListEntry): Promise<FetchResult | 'changed'> {
  const via = o.via === 'auto' ? defaultVia(entry) : o.via;
  const udp = via === 'udp' ? udpTransport(endpoint) : undefined;
  const part = await openPart(o.downloads, entry.name, entry.size, entry.sha256);
  const started = Date.now();
  let udpDone: Promise<unknown> | undefined;
  try {
    const progress = o.onProgress ? (n: number) => o.onProgress!(part.offset + n) : undefined;
    const sessionId = randomInt(1, 0xffffffff);
    const count = entry.size - part.offset;
    // UDP data may arrive before the GET answer: the receiver is listening first.
    if (udp) await part.markUnordered();
    udpDone = udp?.receive({ conn, sessionId, partPath: part.path, offset: part.offset, size: entry.size, ...(progress ? { onProgress: progress } : {}), ...(o.signal ? { signal: o.signal } : {}) });
    udpDone?.catch(() => {}); // judged below; never an unhandled rejection
    const answer = await control.get(conn, o.peer, {
      transport: via,
      sessionId,
      offset: part.offset,
      expectedSha256: entry.sha256,
      maxPayload: via === 'udp' ? DEFAULT_MAX_PAYLOAD : 0,
      name: entry.name,
    }).catch((err) => {
      udp?.cancel(sessionId);
      throw err;
    });
    if (answer.status !== GetStatus.ok) {
      udp?.cancel(sessionId);
      if (answer.status === GetStatus.changed) return 'changed';
      throw refusal(answer.status, o.peer, entry.name);
    }
    // Only now: a request refused as 'changed' is asked again with another size and digest.
    o.onStart?.({ entry, via, offset: part.offset });
    if (via === 'tcp') {
      await fetchOverTcp({ host: conn.remote.address, port: conn.remote.port, sessionId, partPath: part.path, offset: part.offset, count, ...(progress ? { onProgress: progress } : {}), ...(o.signal ? { signal: o.signal } : {}) });
    } else {
      await udpDone;
    }
    if (!(await verifyPart(part.path, entry.sha256))) {
      throw new P2pError('INTEGRITY', `integrity check failed for ${entry.name}: SHA-256 differs from the owner's; the partial file was removed`);
    }
    const path = await finish(part.path, o.downloads, entry.name);
    return {
      name: entry.name,
      size: entry.size,
      sha256: entry.sha256,
      via,
      path,
      seconds: (Date.now() - started) / 1000,
      bytesTransferred: count,
      resumedFrom: part.offset,
    };
  } catch (err) {
    if (err instanceof P2pError) throw err;
    if (o.signal?.aborted) throw new P2pError('ABORTED', `interrupted: ${entry.name} not finished; the partial file is kept, run again to resume`, { cause: err });
    throw new P2pError('FAILED', `transfer of ${entry.name} from ${o.peer} failed: ${(err as Error).message} (partial file kept; run again to resume)`, { cause: err });
  } finally {
    await udpDone?.catch(() => {}); // a cancelled receive first cuts the .part to its hole-free prefix
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
    case GetStatus.badRequest:
      return new P2pError('FAILED', `peer '${peer}' refused the request as malformed (incompatible version?)`);
    default:
      return new P2pError('FAILED', `peer '${peer}' could not serve ${name} (status ${status})`);
  }
}
