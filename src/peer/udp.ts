// The one place the peer meets the UDP transport (src/transfer/udp): one UdpTransfers per
// endpoint, created on first use, because it owns the endpoint's handlers for types 0x10-0x1f.
import type { Endpoint } from '../net/endpoint';
import { DEFAULT_MAX_PAYLOAD, UdpTransfers } from '../transfer/udp/index';

export { DEFAULT_MAX_PAYLOAD };

const transports = new WeakMap<Endpoint, UdpTransfers>();

/** The UDP transport on `endpoint` (the same one for every call with this endpoint). */
export function udpTransport(endpoint: Endpoint): UdpTransfers {
  let t = transports.get(endpoint);
  if (!t) {
    t = new UdpTransfers(endpoint);
    transports.set(endpoint, t);
  }
  return t;
}
