// Sealed connections between in-process endpoints for tests: an owner endpoint that answers
// handshakes under a name, requester endpoints, and the connection pair a handshake makes.
import { PrivateKey } from '../../src/core/x25519';
import { Opener, Sealer } from '../../src/crypto/transport';
import type { Remote, SecureConnection } from '../../src/net/connection';
import { Endpoint, type EndpointOptions } from '../../src/net/endpoint';
import { decodeTcpReply, encodeTcpHelloHead, RecordReader } from '../../src/wire/tcp';

export interface Owner {
  endpoint: Endpoint;
  identity: PrivateKey;
  name: string;
  address: Remote;
}

/** A reserved control type no handler of the peer's sees: a test's first message on a connection. */
export const PROBE = 0x0e;

/** An endpoint on 127.0.0.1 that answers handshakes as `name`. */
export async function ownerEndpoint(name = 'owner', opts: Partial<EndpointOptions> = {}): Promise<Owner> {
  const identity = opts.identity ?? PrivateKey.generate();
  const endpoint = await Endpoint.bind(0, '127.0.0.1', { ...opts, identity, serveName: name });
  return { endpoint, identity, name, address: { address: '127.0.0.1', port: endpoint.port } };
}

/** An endpoint on 127.0.0.1 that only starts handshakes. */
export function requesterEndpoint(identity = PrivateKey.generate()): Promise<Endpoint> {
  return Endpoint.bind(0, '127.0.0.1', { identity });
}

/** The requester's connection to the owner (at `via`, e.g. a relay in front of it; default its own address). */
export function connect(requester: Endpoint, owner: Owner, via: Remote = owner.address): Promise<SecureConnection> {
  return requester.handshake(via, { peerKey: owner.identity.publicKey, ownerName: owner.name });
}

/**
 * Both ends of a validated connection: the requester handshakes, then sends one message so the
 * owner's end authenticates a frame (and is no longer half-open); the owner's end is returned.
 */
export async function connectBoth(requester: Endpoint, owner: Owner, via?: Remote): Promise<{ toOwner: SecureConnection; toRequester: SecureConnection }> {
  const toOwner = await connect(requester, owner, via);
  let seen: SecureConnection | undefined;
  owner.endpoint.on(PROBE, (_f, conn) => (seen = conn));
  try {
    for (let i = 0; i < 100 && !seen; i++) {
      toOwner.send(PROBE, 0);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    owner.endpoint.off(PROBE);
  }
  if (!seen) throw new Error("the owner never authenticated the requester's frame");
  return { toOwner, toRequester: seen };
}

/** The 28-byte TCP hello a requester sends for `sessionId` on `conn` (PROTOCOL.md section 5). */
export function tcpHello(conn: SecureConnection, sessionId: number): Buffer {
  const head = encodeTcpHelloHead(conn.remoteIndex, sessionId);
  return Buffer.concat([head, new Sealer(conn.tcpKeys(sessionId).requesterToOwner).seal(0, head)]);
}

/** The owner's reply (status, count) in the first record of `stream`, or null if it is not one. */
export function tcpReplyOf(conn: SecureConnection, sessionId: number, stream: Buffer): { status: number; count: number; records: number } | null {
  const records = new RecordReader().push(stream);
  if (records === 'malformed' || records.length === 0) return null;
  const opener = new Opener(conn.tcpKeys(sessionId).ownerToRequester);
  const plain = opener.open(0, records[0]!.header, Buffer.concat(records[0]!.sealed));
  const reply = plain && decodeTcpReply(plain);
  return reply ? { ...reply, records: records.length } : null;
}
