// A requester's session with one owner: look the owner up, check its key against what this
// requester pinned (known_peers, like SSH's known_hosts) or was told out of band (PEER@FINGERPRINT),
// handshake on one UDP socket, and pin the key once the owner has proved it holds it.
import { P2pError } from '../core/errors';
import { decodeKey, fingerprint, type Identity } from '../crypto/identity';
import { KnownPeers, knownPeersPath } from '../crypto/known-peers';
import type { SecureConnection } from '../net/connection';
import { Endpoint } from '../net/endpoint';
import { PathMtuSearch } from '../net/path-mtu';
import type { PeerRecord, RegistryClient } from '../registry/client';
import { ControlClient } from '../control/client';
import { DATA_HEADER_BYTES } from '../wire/transfer';
import { reach, type Reached, type Route } from './route';
import { DEFAULT_MAX_PAYLOAD } from './udp';

export interface SessionOptions {
  registry: RegistryClient;
  /** The owner's name as the user typed it. */
  peer: string;
  identity: Identity;
  /** A fingerprint the user gave (PEER@FINGERPRINT): the owner's key must have it. */
  pin?: string;
  /** Replace a pinned key that changed (after the user checked the new one out of band). */
  acceptNewKey?: boolean;
  signal?: AbortSignal;
}

export interface Session {
  endpoint: Endpoint;
  conn: SecureConnection;
  control: ControlClient;
  /** The owner's fingerprint. */
  fingerprint: string;
  /** How the connection reached the owner: direct, punched through NATs, or through the registry's relay. */
  route: Route;
  /** A new session ID for a GET on this connection: each larger than the last, none used twice (PROTOCOL.md 4.3). */
  nextSessionId(): number;
  /** The path MTU search on this connection, started right after the handshake (PROTOCOL.md 6.10). */
  pathMtu: PathMtuSearch;
  /**
   * The max payload a UDP GET of `size` bytes asks for: the largest datagram the search has
   * confirmed both ways less the sealed frame and DATA headers, or the default 1200. For 1 MiB or
   * more it waits a short budget for probes still in flight; less takes what is confirmed now
   * (PathMtuSearch.readyFor).
   */
  udpMaxPayload(size: number): Promise<number>;
  /** Says CLOSE to the owner and closes the socket. */
  close(): Promise<void>;
}

/** Splits `PEER@FINGERPRINT` (the fingerprint part optional). */
export function parsePeerArg(arg: string): { peer: string; pin?: string } {
  const at = arg.indexOf('@');
  return at < 0 ? { peer: arg } : { peer: arg.slice(0, at), pin: arg.slice(at + 1) };
}

export async function openSession(o: SessionOptions): Promise<Session> {
  // Our socket does not wait for the registry's answer and known_peers: a one-shot get starts
  // with all three, each a round trip to the network, the disk or the kernel.
  const bound = Endpoint.bind(0, '0.0.0.0', { identity: o.identity.privateKey });
  bound.catch(() => {}); // judged after the owner's key: its errors come first
  let owner: CheckedOwner;
  try {
    owner = await checkedOwner(o);
  } catch (err) {
    await bound.then((e) => e.close(), () => {});
    throw err;
  }
  const { rec, key, known, pinned, theirs } = owner;
  const endpoint = await bound;
  let reached: Reached;
  try {
    reached = await reach(endpoint, rec, { peerKey: key, ownerName: o.peer, ...(o.signal ? { signal: o.signal } : {}) });
  } catch (err) {
    await endpoint.close();
    throw err;
  }
  const { conn, route } = reached;
  // Larger datagrams mean fewer sealings and headers: probed while the file is looked up, never
  // waited for here (PROTOCOL.md 6.10).
  const pathMtu = new PathMtuSearch(conn, conn.overhead + DATA_HEADER_BYTES + DEFAULT_MAX_PAYLOAD);
  // Pinned only now: the owner proved in the handshake that it holds this key.
  if (!pinned || !pinned.equals(key)) {
    await known.pin(o.peer, key).catch(async (err: Error) => {
      pathMtu.stop();
      await endpoint.close();
      throw new P2pError('FAILED', `cannot record ${o.peer}'s key in known_peers: ${err.message}`);
    });
  }
  const release = conn.hold();
  let sessionId = 0;
  return {
    endpoint,
    conn,
    control: new ControlClient(endpoint),
    fingerprint: theirs,
    route,
    nextSessionId: () => ++sessionId,
    pathMtu,
    udpMaxPayload: async (size) => {
      await pathMtu.readyFor(size);
      return pathMtu.datagram - conn.overhead - DATA_HEADER_BYTES;
    },
    close: async () => {
      pathMtu.stop();
      release();
      endpoint.closeConnection(conn);
      await endpoint.close();
    },
  };
}

interface CheckedOwner {
  rec: PeerRecord;
  key: Buffer;
  known: KnownPeers;
  pinned: Buffer | undefined;
  theirs: string;
}

/** The owner's registration and key, refused when it is not the key pinned or given for it. */
async function checkedOwner(o: SessionOptions): Promise<CheckedOwner> {
  const loading = KnownPeers.load(knownPeersPath(o.identity.path));
  loading.catch(() => {}); // judged after the lookup, whose errors come first
  const rec = await o.registry.lookup(o.peer);
  const known = await loading;
  const key = typeof rec.publicKey === 'string' ? decodeKey(rec.publicKey) : null;
  if (!key) throw new P2pError('FAILED', `the registry gave no usable key for '${o.peer}'`);
  const pinned = known.get(o.peer);
  const theirs = fingerprint(key);
  if (o.pin !== undefined && o.pin !== theirs) {
    throw new P2pError('KEY_MISMATCH', `peer '${o.peer}' presents key ${theirs}, not the ${o.pin} you gave; refusing to connect`);
  }
  if (pinned && !pinned.equals(key) && !o.acceptNewKey && o.pin === undefined) {
    throw new P2pError(
      'KEY_MISMATCH',
      `peer '${o.peer}' now presents key ${theirs}, but known_peers pins ${fingerprint(pinned)} for it; if you checked the new key, run again with --accept-new-key`,
    );
  }
  return { rec, key, known, pinned, theirs };
}
