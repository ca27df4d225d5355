// An owner in its own process for transport tests that must disturb the requester's process
// alone (e.g. a slow disk). It answers handshakes as 'owner' and tells the parent {port, key};
// the requester's first message (a probe) shows it the connection; then the parent sends
// {sessionId, path, size} and this answers {ok|error}.
import { UdpTransfers } from '../../src/transfer/udp/index';
import type { SecureConnection } from '../../src/net/connection';
import { ownerEndpoint, PROBE } from '../support/secure';

async function main(): Promise<void> {
  const owner = await ownerEndpoint('owner');
  const udp = new UdpTransfers(owner.endpoint);
  let conn: SecureConnection | undefined;
  owner.endpoint.on(PROBE, (_f, c) => {
    if (!conn) process.send!({ connected: true });
    conn = c;
  });
  process.on('message', (m: { sessionId: number; path: string; size: number }) => {
    udp.send({ conn: conn!, sessionId: m.sessionId, path: m.path, offset: 0, size: m.size, maxPayload: 1200 }).then(
      (r) => process.send!({ ok: r }),
      (e: Error) => process.send!({ error: e.message }),
    );
  });
  process.on('disconnect', () => void owner.endpoint.close().then(() => process.exit(0)));
  process.send!({ port: owner.endpoint.port, key: owner.identity.publicKey.toString('base64url') });
}
void main();
