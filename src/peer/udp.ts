// The one place the peer meets the UDP transport (src/transfer/udp): one UdpTransfers per
// endpoint, created on first use, because it owns the endpoint's handlers for types 0x10-0x1f.
import type { Endpoint, Remote } from '../transfer/endpoint';
import { DEFAULT_MAX_PAYLOAD, UdpTransfers } from '../transfer/udp/index';

export { DEFAULT_MAX_PAYLOAD };

export interface UdpTransport {
  send(o: { to: Remote; sessionId: number; path: string; offset: number; size: number; maxPayload: number }): Promise<unknown>;
  receive(o: { from: Remote; sessionId: number; partPath: string; offset: number; size: number; onProgress?: (bytesDone: number) => void }): Promise<unknown>;
  cancel(sessionId: number): void;
}

const transports = new WeakMap<Endpoint, UdpTransfers>();

/** The UDP transport on `endpoint` (the same one for every call with this endpoint). */
export function udpTransport(endpoint: Endpoint): UdpTransport | undefined {
  let t = transports.get(endpoint);
  if (!t) {
    t = new UdpTransfers(endpoint);
    transports.set(endpoint, t);
  }
  return t;
}
