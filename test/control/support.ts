// An owner in this process (control server, TCP server and UDP transport on one port number of
// 127.0.0.1), so a test can inspect its state, give it short timers, or offer it whatever it
// likes: a real share list, or a hostile one announcing names and sizes a real one never would.
import { ControlServer, type FetchEvent, type OfferedFile, type Offer } from '../../src/control/server';
import type { PrivateKey } from '../../src/core/x25519';
import { ShareIndex } from '../../src/peer/share';
import { RegistryClient } from '../../src/registry/client';
import { closeTcpServer, createTcpServer, type TcpServerOptions } from '../../src/transfer/tcp-server';
import { UdpTransfers } from '../../src/transfer/udp/index';
import { ownerEndpoint } from '../support/secure';

export interface InProcessOwnerOptions {
  name?: string;
  identity?: PrivateKey;
  maxTransfers?: number;
  maxPerRequester?: number;
  ticketTtlMs?: number;
  tcp?: TcpServerOptions;
  udp?: { idleTimeoutMs?: number; progressTimeoutMs?: number };
  /** False: batch GETs are refused as an owner of an older version does (PROTOCOL.md 5.1). */
  batch?: boolean;
  onFetch?: (e: FetchEvent) => void;
}

export type InProcessOwner<F extends OfferedFile = OfferedFile> = Awaited<ReturnType<typeof inProcessOwner<F>>>;

export async function inProcessOwner<F extends OfferedFile>(offer: Offer<F>, o: InProcessOwnerOptions = {}) {
  const side = await ownerEndpoint(o.name ?? 'o', o.identity ? { identity: o.identity } : {});
  const endpoint = side.endpoint;
  const udp = new UdpTransfers(endpoint, o.udp ?? {});
  const control = new ControlServer(endpoint, offer, {
    maxTransfers: o.maxTransfers ?? 32,
    udp,
    ...(o.maxPerRequester !== undefined ? { maxPerRequester: o.maxPerRequester } : {}),
    ...(o.ticketTtlMs !== undefined ? { ticketTtlMs: o.ticketTtlMs } : {}),
    ...(o.batch !== undefined ? { batch: o.batch } : {}),
    ...(o.onFetch ? { onFetch: o.onFetch } : {}),
  });
  const tcp = createTcpServer(control, o.tcp);
  await new Promise<void>((resolve) => tcp.listen(endpoint.port, '127.0.0.1', resolve));
  return {
    side,
    endpoint,
    control,
    tcp,
    udp,
    port: endpoint.port,
    /** TCP connections the owner holds now. */
    connections: () => new Promise<number>((resolve) => tcp.getConnections((_err, n) => resolve(n))),
    /** Registers the owner's name at `registryUrl` (its key, this port or a relay's in front of it), so a requester can reach it. */
    async register(registryUrl: string, port = endpoint.port) {
      await new RegistryClient(registryUrl).register({ name: side.name, port, ip: '127.0.0.1' }, side.identity);
    },
    async close() {
      control.close();
      udp.cancelAll('the owner stopped');
      await endpoint.close();
      await closeTcpServer(tcp);
    },
  };
}

/** An owner sharing `paths` (files or folders), without a registry. */
export async function owner(paths: string[], o: InProcessOwnerOptions = {}) {
  return inProcessOwner(await ShareIndex.build(paths), o);
}
