// The one place the peer meets the UDP transport (src/transfer/udp).
import type { Endpoint, Remote } from '../transfer/endpoint';

export interface UdpTransport {
  send(o: { to: Remote; sessionId: number; path: string; offset: number; size: number; maxPayload: number }): Promise<unknown>;
  receive(o: { from: Remote; sessionId: number; partPath: string; offset: number; size: number; onProgress?: (bytesDone: number) => void }): Promise<unknown>;
  cancel(sessionId: number): void;
}

export const DEFAULT_MAX_PAYLOAD = 1200;

/** The UDP transport on `endpoint`, or undefined while it is not built. */
export function udpTransport(_endpoint: Endpoint): UdpTransport | undefined {
  return undefined;
}
