// A "peer" for the rendezvous tests: a real UDP socket on a loopback address that keeps every
// datagram it receives and counts its bytes both ways; and the registrations, keepalives and
// introductions a peer performs, done by hand with the frames of src/wire/rendezvous.ts.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import type { RunningRegistry } from '../../src/registry/index';
import type { Endpoint } from '../../src/registry/store';
import {
  RendezvousType, decodeIntroChallenge, decodeIntroResponse, decodeKeepaliveAck, encodeIntroRequest, encodeKeepalive, rendezvousKey,
  type Candidate, type IntroResponse, type KeepaliveAck,
} from '../../src/wire/rendezvous';
import { call, register } from './http';
import { metric } from './sockets';

export interface Received {
  data: Buffer;
  from: Endpoint;
}

export class UdpPeer {
  readonly received: Received[] = [];
  bytesSent = 0;
  bytesReceived = 0;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.on('message', (data, rinfo) => {
      this.bytesReceived += data.length;
      this.received.push({ data, from: { ip: rinfo.address, port: rinfo.port } });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(host = '127.0.0.1'): Promise<UdpPeer> {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => resolve());
    });
    return new UdpPeer(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  get endpoint(): Endpoint {
    const a = this.socket.address();
    return { ip: a.address, port: a.port };
  }

  send(datagram: Buffer, port: number, host = '127.0.0.1'): Promise<void> {
    this.bytesSent += datagram.length;
    return new Promise((resolve, reject) => this.socket.send(datagram, port, host, (err) => (err ? reject(err) : resolve())));
  }

  /** Removes and returns the first datagram received of envelope type `type` (and `match`), or null after timeoutMs. */
  next(type: number, timeoutMs = 2000, match: (r: Received) => boolean = () => true): Promise<Received | null> {
    return this.waitFor((r) => r.data[3] === type && match(r), timeoutMs, true);
  }

  /** The first datagram received, already or within timeoutMs, that `match` accepts (removed with `take`); null after timeoutMs. */
  async waitFor(match: (r: Received) => boolean, timeoutMs: number, take = false): Promise<Received | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex(match);
      if (i >= 0) return take ? this.received.splice(i, 1)[0]! : this.received[i]!;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Datagrams of `type` received so far (not removed). */
  countOf(type: number): number {
    return this.received.filter((r) => r.data[3] === type).length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** Registers `name` and returns its token (addresses: host candidates; port: the registered port). */
export async function registerPeer(reg: RunningRegistry, name: string, fields: { port?: number; addresses?: string[] } = {}): Promise<string> {
  const r = await register(reg.url, { name, port: fields.port ?? 4000, ...(fields.addresses ? { addresses: fields.addresses } : {}) });
  assert.equal(r.status, 201, r.text);
  return r.json.token as string;
}

/** Sends one KEEPALIVE to `reg`'s UDP port; resolves with the ACK, or null when none came within timeoutMs. */
export async function keepalive(peer: UdpPeer, reg: RunningRegistry, name: string, token: string, sequence: number, timeoutMs = 2000): Promise<KeepaliveAck | null> {
  await peer.send(encodeKeepalive({ name, sequence }, rendezvousKey(token)), reg.stunPort!);
  const ack = await peer.next(RendezvousType.keepaliveAck, timeoutMs);
  return ack ? decodeKeepaliveAck(ack.data) : null;
}

/** The challenge round trip, then the request with its token: the INTRO_RESPONSE, and the token used. */
export async function introduce(peer: UdpPeer, port: number, owner: string, hosts: Candidate[] = [], requestId = 1): Promise<IntroResponse & { token: Buffer }> {
  await peer.send(encodeIntroRequest({ requestId, owner, hosts, token: Buffer.alloc(0) }), port);
  const ch = await peer.next(RendezvousType.introChallenge);
  assert.ok(ch, 'an INTRO_CHALLENGE');
  const { token } = decodeIntroChallenge(ch.data)!;
  await peer.send(encodeIntroRequest({ requestId: requestId + 1, owner, hosts, token }), port);
  const res = await peer.next(RendezvousType.introResponse);
  assert.ok(res, 'an INTRO_RESPONSE');
  const r = decodeIntroResponse(res.data)!;
  assert.equal(r.requestId, requestId + 1, 'the request id echoed');
  return { ...r, token };
}

/** A registered owner kept alive from its own socket. */
export async function keptAliveOwner(reg: RunningRegistry, name: string, fields: { addresses?: string[] } = {}): Promise<{ peer: UdpPeer; token: string }> {
  const token = await registerPeer(reg, name, fields);
  const peer = await UdpPeer.open();
  const ack = await keepalive(peer, reg, name, token, 1);
  assert.ok(ack, 'the keepalive is acknowledged');
  return { peer, token };
}

/** The rendezvous and relay counters of /metrics. */
export async function rendezvousCounters(reg: RunningRegistry): Promise<(event: string) => number> {
  const text = (await call(reg.url, 'GET', '/metrics')).text;
  return (event: string) => {
    const r = metric(text, `p2pshare_registry_rendezvous_total{event="${event}"}`);
    return Number.isNaN(r) ? metric(text, `p2pshare_registry_relay_total{event="${event}"}`) : r;
  };
}
