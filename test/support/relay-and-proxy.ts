// A UDP relay and a TCP proxy on one port number, as a peer listens (UDP and TCP on the same
// number) and as a NAT's mapping would forward both.
import { UdpRelay } from './relay';
import { TcpProxy, type TcpProxyOptions } from './tcp-proxy';

type RelayOptions = Parameters<typeof UdpRelay.start>[0];

/**
 * Binds the relay on a free UDP port, then the proxy on the same TCP number. That number may be
 * taken on the TCP side (another test's listener or an outgoing connection's local port), so on
 * EADDRINUSE both are given up and another number tried, as the peer's own bind does. A failure
 * never leaves the relay's socket open (an open socket keeps the test process alive).
 */
export async function relayAndProxy(relayOptions: RelayOptions, proxyOptions: Omit<TcpProxyOptions, 'port'>): Promise<{ relay: UdpRelay; proxy: TcpProxy; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const relay = await UdpRelay.start(relayOptions);
    try {
      const proxy = await TcpProxy.start({ ...proxyOptions, port: relay.port });
      return { relay, proxy, port: relay.port };
    } catch (err) {
      await relay.close();
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw err;
    }
  }
}
