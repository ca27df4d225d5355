// One side of the path MTU test in network namespaces (test/net/path-mtu-netns.test.ts), run in its
// namespace: `owner ADDRESS` binds an endpoint there, prints {"port","key"} and serves until stdin
// closes; `requester ADDRESS OWNER PORT KEY` handshakes with it, runs the path MTU search and
// prints its final state as one JSON line.
import { PrivateKey } from '../../src/core/x25519';
import { Endpoint } from '../../src/net/endpoint';
import { PathMtuSearch } from '../../src/net/path-mtu';

const BASE = 1249; // the datagram of a default 1200-byte chunk

async function main(): Promise<void> {
  const [role, address, ownerAddress, port, key] = process.argv.slice(2);
  if (role === 'owner') {
    const identity = PrivateKey.generate();
    const endpoint = await Endpoint.bind(0, address!, { identity, serveName: 'owner' });
    process.stdout.write(JSON.stringify({ port: endpoint.port, key: identity.publicKey.toString('hex') }) + '\n');
    process.stdin.resume();
    process.stdin.on('end', () => void endpoint.close());
    return;
  }
  const endpoint = await Endpoint.bind(0, address!, { identity: PrivateKey.generate() });
  try {
    const conn = await endpoint.handshake({ address: ownerAddress!, port: Number(port) }, { peerKey: Buffer.from(key!, 'hex'), ownerName: 'owner' });
    const search = new PathMtuSearch(conn, BASE);
    await search.whenDone();
    process.stdout.write(JSON.stringify(search.state()) + '\n');
  } finally {
    await endpoint.close();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
