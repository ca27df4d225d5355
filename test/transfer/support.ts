// Shared set-up for UDP transport tests: two Endpoints in this process (owner and requester),
// optionally with the impairment relay between them, and a file sent from one to the other.
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { Connection, Remote } from '../../src/net/connection';
import type { Endpoint } from '../../src/net/endpoint';
import { UdpTransfers } from '../../src/transfer/udp/index';
import { connectBoth, ownerEndpoint, requesterEndpoint, type Owner } from '../support/secure';
import { UdpRelay, type CaptureOptions, type Impairment } from '../support/relay';
import { randomFile, sha256 } from '../peer/support';

export { randomFile, sha256 };

export interface Pair {
  /** The owner's endpoint with its key and name (for more requesters). */
  ownerSide: Owner;
  owner: Endpoint;
  requester: Endpoint;
  ownerUdp: UdpTransfers;
  requesterUdp: UdpTransfers;
  relay?: UdpRelay;
  /** Where the requester sends (the owner, or the relay in front of it). */
  ownerAddress: Remote;
  /** Where the owner sends (the requester as the owner sees it: maybe the relay's mapping). */
  requesterAddress: Remote;
  /** The requester's connection to ownerAddress. */
  toOwner: Connection;
  /** The owner's connection to requesterAddress. */
  toRequester: Connection;
  close(): Promise<void>;
}

/** With an impairment (or `capture`), the requester reaches the owner through the relay. */
export async function pair(o: { toClient?: Impairment; toTarget?: Impairment; capture?: CaptureOptions; idleTimeoutMs?: number } = {}): Promise<Pair> {
  const ownerSide = await ownerEndpoint('owner');
  const owner = ownerSide.endpoint;
  const requester = await requesterEndpoint();
  const opts = o.idleTimeoutMs ? { idleTimeoutMs: o.idleTimeoutMs } : {};
  const ownerUdp = new UdpTransfers(owner, opts);
  const requesterUdp = new UdpTransfers(requester, opts);
  let relay: UdpRelay | undefined;
  let ownerAddress: Remote = ownerSide.address;
  if (o.toClient || o.toTarget || o.capture) {
    relay = await UdpRelay.start({
      target: ownerAddress,
      ...(o.toClient ? { toClient: o.toClient } : {}),
      ...(o.toTarget ? { toTarget: o.toTarget } : {}),
      ...(o.capture ? { capture: o.capture } : {}),
    });
    ownerAddress = { address: '127.0.0.1', port: relay.port };
  }
  // Through the relay the owner sees the relay's mapping of the requester, as a NAT would show it.
  const { toOwner, toRequester } = await connectBoth(requester, ownerSide, ownerAddress);
  return {
    ownerSide,
    owner,
    requester,
    ownerUdp,
    requesterUdp,
    ...(relay ? { relay } : {}),
    ownerAddress,
    requesterAddress: toRequester.remote,
    toOwner,
    toRequester,
    async close() {
      await relay?.close();
      await owner.close();
      await requester.close();
    },
  };
}

export function sessionId(): number {
  return randomInt(1, 0xffffffff);
}

/** Sends `path` from the owner into `dir`/received.part; both promises together. */
export async function transfer(p: Pair, path: string, size: number, dir: string, o: { offset?: number; partName?: string; hash?: boolean } = {}) {
  const id = sessionId();
  const partPath = join(dir, o.partName ?? `received-${id}.part`);
  const offset = o.offset ?? 0;
  const received = p.requesterUdp.receive({ conn: p.toOwner, sessionId: id, partPath, offset, size, ...(o.hash ? { hash: true } : {}) });
  const sent = p.ownerUdp.send({ conn: p.toRequester, sessionId: id, path, offset, size, maxPayload: 1200 });
  const [r, s] = await Promise.all([received, sent]);
  return { received: r, sent: s, partPath };
}
