// Shared set-up for peer tests: an in-process registry, peers as real CLI processes, files.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadOrCreateIdentity, type Identity } from '../../src/crypto/identity';
import { startRegistry } from '../../src/registry/index';
import type { SecureConnection } from '../../src/net/connection';
import type { Endpoint } from '../../src/net/endpoint';
import { RegistryClient } from '../../src/registry/client';
import { startCli, TEST_CONFIG_HOME, type RunningCli } from '../support/cli';
import { UdpRelay, type Impairment } from '../support/relay';
import { requesterEndpoint } from '../support/secure';

export async function registry(opts: { ttl?: number; port?: number } = {}) {
  return startRegistry({ host: '127.0.0.1', port: opts.port ?? 0, ttl: opts.ttl ?? 30, stunPort: null });
}

/** Starts `p2pshare peer` (`env`: added to its environment) and waits for its ready line; resolves with the process and its port. */
export async function startPeer(name: string, registryUrl: string, cwd: string, extra: string[] = [], env?: Record<string, string>): Promise<{ cli: RunningCli; port: number }> {
  const cli = startCli(['peer', '--name', name, '--registry', registryUrl, '--no-interactive', ...extra], { cwd, ...(env ? { env } : {}) });
  const m = await cli.waitForLine(/ready on udp\/tcp port (\d+)/, 30_000);
  return { cli, port: Number(m[1]) };
}

/** Writes `size` random bytes to `path` in 1 MiB pieces (bounded memory); returns the SHA-256. */
export async function randomFile(path: string, size: number): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const chunk = randomBytes(Math.min(1024 * 1024, size - done));
      hash.update(chunk);
      await fh.write(chunk);
      done += chunk.length;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

export async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const c of createReadStream(path)) hash.update(c as Buffer);
  return hash.digest('hex');
}

/** A requester endpoint and its session with the registered peer `name` (key from the registry). */
export async function connectToPeer(registryUrl: string, name: string): Promise<{ endpoint: Endpoint; conn: SecureConnection }> {
  const rec = await new RegistryClient(registryUrl).lookup(name);
  const endpoint = await requesterEndpoint();
  try {
    const conn = await endpoint.handshake({ address: '127.0.0.1', port: rec.port }, { peerKey: Buffer.from(rec.publicKey, 'base64url'), ownerName: name });
    return { endpoint, conn };
  } catch (err) {
    await endpoint.close();
    throw err;
  }
}

/** A requester's identity (and its known_peers) in `dir`, never the user's. */
export function requesterIdentity(dir: string): Promise<Identity> {
  return loadOrCreateIdentity(join(dir, '.p2pshare', 'identity'));
}

/**
 * Re-registers `name` (a CLI peer of this test file: same identity) at 127.0.0.1:`port`, where a
 * relay or proxy in front of it listens, as a NAT's mapping would. The peer then stops
 * heartbeating (it was taken over), so the registry's TTL must outlast the test.
 */
export async function pointRegistration(registryUrl: string, name: string, port: number): Promise<void> {
  const { privateKey } = await loadOrCreateIdentity(join(TEST_CONFIG_HOME, 'p2pshare', 'identity'));
  await new RegistryClient(registryUrl).register({ name, port, ip: '127.0.0.1' }, privateKey);
}

/**
 * `p2pshare peer NAME` reached only through a UDP impairment relay (pointRegistration).
 */
export async function peerBehindRelay(name: string, registryUrl: string, cwd: string, impairment: { toClient?: Impairment; toTarget?: Impairment }, extra: string[] = []) {
  const peer = await startPeer(name, registryUrl, cwd, extra);
  const relay = await UdpRelay.start({ target: { address: '127.0.0.1', port: peer.port }, ...impairment });
  await pointRegistration(registryUrl, name, relay.port);
  return {
    cli: peer.cli,
    relay,
    async stop() {
      await relay.close();
      await peer.cli.stop();
    },
  };
}
