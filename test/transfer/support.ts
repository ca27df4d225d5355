// Shared set-up for UDP transport tests: two Endpoints in this process (owner and requester),
// optionally with the impairment relay between them, and a file sent from one to the other.
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { Connection, Remote } from '../../src/net/connection';
import { Endpoint } from '../../src/net/endpoint';
import { FrameType } from '../../src/wire/frame';
import { UdpTransfers } from '../../src/transfer/udp/index';
import { UdpRelay, type Impairment } from '../support/relay';
import { randomFile, sha256 } from '../peer/support';

export { randomFile, sha256 };

export interface Pair {
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

export async function pair(o: { toClient?: Impairment; toTarget?: Impairment; idleTimeoutMs?: number } = {}): Promise<Pair> {
  const owner = await Endpoint.bind(0, '127.0.0.1');
  const requester = await Endpoint.bind(0, '127.0.0.1');
  const opts = o.idleTimeoutMs ? { idleTimeoutMs: o.idleTimeoutMs } : {};
  const ownerUdp = new UdpTransfers(owner, opts);
  const requesterUdp = new UdpTransfers(requester, opts);
  let relay: UdpRelay | undefined;
  let ownerAddress: Remote = { address: '127.0.0.1', port: owner.port };
  let toRequester = owner.connect({ address: '127.0.0.1', port: requester.port });
  if (o.toClient || o.toTarget) {
    relay = await UdpRelay.start({ target: ownerAddress, ...(o.toClient ? { toClient: o.toClient } : {}), ...(o.toTarget ? { toTarget: o.toTarget } : {}) });
    ownerAddress = { address: '127.0.0.1', port: relay.port };
    toRequester = await learnMapping(owner, requester, ownerAddress);
  }
  const requesterAddress = toRequester.remote;
  const toOwner = requester.connect(ownerAddress);
  return {
    owner,
    requester,
    ownerUdp,
    requesterUdp,
    ...(relay ? { relay } : {}),
    ownerAddress,
    requesterAddress,
    toOwner,
    toRequester,
    async close() {
      await relay?.close();
      await owner.close();
      await requester.close();
    },
  };
}

/** Like a GET_REQUEST would: the requester sends through the relay, the owner sees the mapping. */
async function learnMapping(owner: Endpoint, requester: Endpoint, via: Remote): Promise<Connection> {
  let seen: Connection | undefined;
  owner.on(FrameType.getRequest, (_f, conn) => (seen = conn));
  try {
    for (let i = 0; i < 100 && !seen; i++) {
      requester.connect(via).send(FrameType.getRequest, 1, Buffer.alloc(0));
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    owner.off(FrameType.getRequest);
  }
  if (!seen) throw new Error('the relay never passed a datagram to the owner');
  return seen;
}

export function sessionId(): number {
  return randomInt(1, 0xffffffff);
}

/** Sends `path` from the owner into `dir`/received.part; both promises together. */
export async function transfer(p: Pair, path: string, size: number, dir: string, o: { offset?: number; partName?: string } = {}) {
  const id = sessionId();
  const partPath = join(dir, o.partName ?? `received-${id}.part`);
  const offset = o.offset ?? 0;
  const received = p.requesterUdp.receive({ conn: p.toOwner, sessionId: id, partPath, offset, size });
  const sent = p.ownerUdp.send({ conn: p.toRequester, sessionId: id, path, offset, size, maxPayload: 1200 });
  const [r, s] = await Promise.all([received, sent]);
  return { received: r, sent: s, partPath };
}
