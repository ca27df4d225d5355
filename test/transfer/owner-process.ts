// An owner in its own process for transport tests that must disturb the requester's process
// alone (e.g. a slow disk). Parent sends {to, sessionId, path, size}; this answers {ok|error}.
import { Endpoint } from '../../src/net/endpoint';
import { UdpTransfers } from '../../src/transfer/udp/index';

async function main(): Promise<void> {
  const endpoint = await Endpoint.bind(0, '127.0.0.1');
  const udp = new UdpTransfers(endpoint);
  process.on('message', (m: { to: { address: string; port: number }; sessionId: number; path: string; size: number }) => {
    udp.send({ conn: endpoint.connect(m.to), sessionId: m.sessionId, path: m.path, offset: 0, size: m.size, maxPayload: 1200 }).then(
      (r) => process.send!({ ok: r }),
      (e: Error) => process.send!({ error: e.message }),
    );
  });
  process.on('disconnect', () => void endpoint.close().then(() => process.exit(0)));
  process.send!({ port: endpoint.port });
}
void main();
