// A running peer: its one UDP endpoint and TCP server on the same port number, its share list,
// and its registration kept alive (heartbeat well inside the TTL, re-registration when the
// registry forgot it, serving on while the registry is unreachable). The name is bound to the
// peer's X25519 identity at the registry (README.md, "The registry API with curl").
import { lookup } from 'node:dns/promises';
import type net from 'node:net';
import { privateAddresses } from '../core/addresses';
import { listening } from '../core/async';
import { P2pError } from '../core/errors';
import { PrivateKey } from '../core/x25519';
import { RegistryClient, RegistryHttpError } from '../registry/client';
import { toBase64url } from '../registry/proof';
import { Endpoint } from '../net/endpoint';
import { closeTcpServer, createTcpServer } from '../transfer/tcp-server';
import { ControlServer, type FetchEvent } from '../control/server';
import { RendezvousClient } from './rendezvous';
import type { ShareIndex, SharedFile } from './share';
import { udpTransport } from './udp';

export interface PeerOptions {
  name: string;
  registryUrl: string;
  share: ShareIndex;
  /** 0 = any free port (the same number is taken on UDP and TCP). */
  port: number;
  /** Address to be reached at, sent to the registry as `ip`. */
  advertise?: string;
  /** Transfer slots in all (running transfers and unredeemed TCP tickets); default 32. */
  maxTransfers?: number;
  /** Slots one requester key may hold; default 4 (README "Limits of a peer"). */
  maxPerRequester?: number;
  onFetch?: (e: FetchEvent) => void;
  /** Notices about the registration (lost, restored, taken over); one line each. */
  onNotice?: (line: string) => void;
  /** The key the name is registered with and handshakes are answered with; default: a new one for this run. */
  identity?: PrivateKey;
  /** Whether a requester's key may list and fetch (--allow); everyone by default. */
  allow?: (peerKey: Buffer) => boolean | Promise<boolean>;
  /** Milliseconds between keepalives to the registry's UDP port (default 20 s). */
  keepaliveMs?: number;
}

export const DEFAULT_MAX_TRANSFERS = 32;
/** The registry keeps at most this many addresses (host candidates) per registration. */
const MAX_ADDRESSES = 8;

export class Peer {
  private token = '';
  private timer: NodeJS.Timeout | undefined;
  private registryDown = false;
  private stopped = false;
  /** Another process with our identity registered the name since: we leave it to that one. */
  private superseded = false;
  /** Keepalives and introductions at the registry's UDP port, once a registration named it. */
  rendezvous: RendezvousClient | undefined;

  private constructor(
    readonly name: string,
    readonly registry: RegistryClient,
    readonly endpoint: Endpoint,
    private readonly tcp: net.Server,
    readonly control: ControlServer<SharedFile>,
    private readonly opts: PeerOptions,
    readonly identity: PrivateKey,
  ) {}

  get port(): number {
    return this.endpoint.port;
  }

  static async start(o: PeerOptions): Promise<Peer> {
    const registry = new RegistryClient(o.registryUrl);
    const identity = o.identity ?? PrivateKey.generate();
    const { endpoint, tcp, control } = await bindBoth(o, identity);
    const peer = new Peer(o.name, registry, endpoint, tcp, control, o, identity);
    try {
      await peer.register();
    } catch (err) {
      await peer.close();
      if (err instanceof RegistryHttpError && err.status === 409) {
        throw new P2pError('NAME_TAKEN', `the name '${o.name}' is taken; choose another with --name`);
      }
      throw err;
    }
    return peer;
  }

  /** Registers (reclaiming the name if our key holds it already); schedules the next heartbeat from the TTL. */
  private async register(): Promise<void> {
    // Our LAN addresses are host candidates: a peer behind the same NAT reaches us there.
    const addresses = privateAddresses().slice(0, MAX_ADDRESSES);
    const reg = await this.registry.register(
      { name: this.name, port: this.port, ...(this.opts.advertise ? { ip: this.opts.advertise } : {}), ...(addresses.length ? { addresses } : {}) },
      this.identity,
    );
    this.token = reg.token;
    this.schedule(reg.ttl);
    await this.keepAliveAt(reg.rendezvous?.port, reg.token);
  }

  /** Starts (or re-keys) the keepalives towards the registry host's UDP `port` (PROTOCOL.md 9.2). */
  private async keepAliveAt(port: number | undefined, token: string): Promise<void> {
    if (this.rendezvous) return this.rendezvous.renew(token);
    if (!port || this.stopped) return;
    let address: string;
    try {
      address = (await lookup(new URL(this.registry.url).hostname, { family: 4 })).address;
    } catch {
      return; // the registry's name does not resolve over IPv4: no rendezvous (direct peers still work)
    }
    if (this.stopped || this.rendezvous) return;
    this.rendezvous = new RendezvousClient(this.endpoint, {
      registry: { address, port },
      name: this.name,
      token,
      ...(this.opts.keepaliveMs ? { keepaliveMs: this.opts.keepaliveMs } : {}),
      ...(this.opts.onNotice ? { onNotice: this.opts.onNotice } : {}),
    });
    this.rendezvous.start();
  }

  private schedule(ttlSeconds: number): void {
    if (this.stopped || this.superseded) return;
    clearTimeout(this.timer);
    const every = Math.max(250, (ttlSeconds * 1000) / 3);
    this.timer = setTimeout(() => void this.beat(ttlSeconds), every);
    this.timer.unref();
  }

  private async beat(ttl: number): Promise<void> {
    try {
      if (!(await this.registry.heartbeat(this.name, this.token))) {
        await this.register(); // the registry forgot us (expired, or restarted): register again
        this.opts.onNotice?.(`registration of '${this.name}' restored`);
      } else {
        this.schedule(ttl);
      }
      if (this.registryDown) this.opts.onNotice?.('registry reachable again');
      this.registryDown = false;
    } catch (err) {
      if (err instanceof RegistryHttpError && err.status === 403) {
        // Our token no longer owns the name: normally a process with our key registered it since
        // (a restart while this one still runs). We leave the name to it rather than fight.
        this.superseded = true;
        this.token = '';
        const now = await this.registry.lookup(this.name).catch(() => undefined);
        const who = now && now.publicKey !== toBase64url(this.identity.publicKey) ? 'a peer with another key' : 'another process with this identity';
        this.opts.onNotice?.(`'${this.name}' was registered again by ${who}; no longer registering it, still serving`);
        return;
      }
      if (!this.registryDown) this.opts.onNotice?.(`registry problem, still serving: ${(err as Error).message}`);
      this.registryDown = true;
      this.schedule(ttl);
    }
  }

  /** Unregisters (bounded wait) and closes the sockets. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.token) await this.registry.unregister(this.name, this.token).catch(() => {});
    await this.close();
  }

  private async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.rendezvous?.stop();
    this.control.close();
    // Requesters hear the end at once (ABORT) instead of waiting out their idle timeout.
    udpTransport(this.endpoint).cancelAll('the owner stopped');
    await this.endpoint.close();
    await closeTcpServer(this.tcp);
  }
}

/** UDP first, then TCP on the same number; with port 0, retries when TCP finds it taken. */
async function bindBoth(o: PeerOptions, identity: PrivateKey): Promise<{ endpoint: Endpoint; tcp: net.Server; control: ControlServer<SharedFile> }> {
  for (let attempt = 0; ; attempt++) {
    let endpoint: Endpoint;
    try {
      endpoint = await Endpoint.bind(o.port, '0.0.0.0', { identity, serveName: o.name });
    } catch (err) {
      throw new P2pError('FAILED', `cannot use UDP port ${o.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const udp = udpTransport(endpoint);
    const control = new ControlServer(endpoint, o.share, {
      maxTransfers: o.maxTransfers ?? DEFAULT_MAX_TRANSFERS,
      ...(o.maxPerRequester !== undefined ? { maxPerRequester: o.maxPerRequester } : {}),
      sizes: (f) => ({ width: f.width, height: f.height }),
      ...(udp ? { udp } : {}),
      ...(o.onFetch ? { onFetch: o.onFetch } : {}),
      ...(o.allow ? { allow: o.allow } : {}),
    });
    const tcp = createTcpServer(control);
    try {
      await listening(tcp, (done) => tcp.listen(endpoint.port, '0.0.0.0', done));
      return { endpoint, tcp, control };
    } catch (err) {
      control.close();
      await endpoint.close();
      if (o.port !== 0 || attempt >= 20) {
        throw new P2pError('FAILED', `cannot use TCP port ${endpoint.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
  }
}
