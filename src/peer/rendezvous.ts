// An owner's side of the rendezvous (PROTOCOL.md 9): from its one UDP socket it learns its public
// address (STUN), keeps its NAT mapping towards the registry alive with authenticated KEEPALIVEs
// (so the registry always knows where it is reachable from outside), and, when the registry
// introduces a requester (INTRO), punches towards every candidate of that requester so their
// handshake gets through its NAT, and takes the relay session offered for that requester.
import { randomBytes } from 'node:crypto';
import type { Remote } from '../net/connection';
import type { Endpoint } from '../net/endpoint';
import {
  decodeIntro,
  decodeKeepaliveAck,
  encodeKeepalive,
  encodePunch,
  rendezvousKey,
  RendezvousType,
  verifyRendezvousMac,
  type Candidate,
} from '../wire/rendezvous';
import { Attr, decodeAddress, decodeStunMessage, encodeBindingRequest, MAGIC_COOKIE, StunClass } from '../wire/stun';

/** Keepalives at most this far apart (a NAT forgets a UDP mapping after 30 s or more). */
export const DEFAULT_KEEPALIVE_MS = 20_000;
/** Punches towards an introduced requester: every 50 ms for 3 s. */
const PUNCH_EVERY_MS = 50;
const PUNCH_FOR_MS = 3_000;
/** Introductions punched for at once, at most (each is a few dozen tiny datagrams a second). */
const MAX_PUNCHING = 16;

export interface RendezvousOptions {
  /** The registry's UDP address (its host, the port its answers named). */
  registry: Remote;
  name: string;
  /** The registration's token: the keepalives' and INTROs' key derives from it. */
  token: string;
  keepaliveMs?: number;
  onNotice?: (line: string) => void;
}

export class RendezvousClient {
  /** The public address the registry last saw our keepalives come from (server-reflexive). */
  mapping: Candidate | undefined;
  /** INTROs verified and punched for. */
  introductions = 0;
  private key: Buffer;
  private sequence = Date.now() * 1000; // grows across restarts of the process too (below 2^53 for centuries)
  private timer: NodeJS.Timeout | undefined;
  private readonly punching = new Set<NodeJS.Timeout>();
  private stunId: Buffer | undefined;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly o: RendezvousOptions,
  ) {
    this.key = rendezvousKey(o.token);
    endpoint.onClear(RendezvousType.keepaliveAck, (_f, datagram, from) => this.fromRegistry(from) && this.onAck(datagram));
    endpoint.onClear(RendezvousType.intro, (_f, datagram, from) => this.fromRegistry(from) && this.onIntro(datagram));
    endpoint.onForeign((datagram, from) => this.fromRegistry(from) && this.onStun(datagram));
  }

  /** Asks STUN for our public address, then keeps alive at once and every keepaliveMs. */
  start(): void {
    this.stunId = randomBytes(12);
    this.endpoint.sendRaw(encodeBindingRequest(this.stunId), this.o.registry);
    this.keepalive();
  }

  /** A new registration (a new token): its key from now on, and a keepalive with it at once. */
  renew(token: string): void {
    this.key = rendezvousKey(token);
    this.keepalive();
  }

  stop(): void {
    clearTimeout(this.timer);
    for (const t of this.punching) clearInterval(t);
    this.punching.clear();
  }

  private keepalive(): void {
    clearTimeout(this.timer);
    this.endpoint.sendRaw(encodeKeepalive({ name: this.o.name, sequence: ++this.sequence }, this.key), this.o.registry);
    this.timer = setTimeout(() => this.keepalive(), this.o.keepaliveMs ?? DEFAULT_KEEPALIVE_MS);
    this.timer.unref();
  }

  private fromRegistry(from: Remote): boolean {
    return from.relay === undefined && from.port === this.o.registry.port && from.address === this.o.registry.address;
  }

  private onAck(datagram: Buffer): boolean {
    const ack = decodeKeepaliveAck(datagram);
    if (!ack || ack.sequence !== this.sequence) return false;
    this.noteMapping(ack.observed);
    return true;
  }

  private onStun(datagram: Buffer): boolean {
    const decoded = decodeStunMessage(datagram);
    if (!decoded.ok || !this.stunId) return false;
    const m = decoded.message;
    if (!m.transactionId.equals(this.stunId) || m.cls !== StunClass.success) return false;
    const attr = m.attributes.find((a) => a.type === Attr.XOR_MAPPED_ADDRESS);
    const mapped = attr && decodeAddress(attr.value, m.transactionId);
    if (!mapped) return false;
    this.stunId = undefined;
    this.noteMapping({ ip: mapped.address, port: mapped.port });
    return true;
  }

  /** The registry sees us from a new public address: our NAT moved the mapping (it knows already). */
  private noteMapping(c: Candidate): void {
    const before = this.mapping;
    this.mapping = c;
    if (before && (before.ip !== c.ip || before.port !== c.port)) {
      this.o.onNotice?.(`public UDP address now ${c.ip}:${c.port} (was ${before.ip}:${before.port})`);
    }
  }

  /** A requester wants in: open our NAT towards it, and take its relay session if one is offered. */
  private onIntro(datagram: Buffer): boolean {
    const intro = decodeIntro(datagram);
    if (!intro || !verifyRendezvousMac(this.key, intro)) return false;
    this.introductions++;
    if (intro.relaySession !== 0) this.endpoint.acceptRelay(this.o.registry, intro.relaySession);
    if (this.punching.size >= MAX_PUNCHING) return true;
    const targets = [intro.requester, ...intro.hosts].map((c) => ({ address: c.ip, port: c.port }));
    const punch = encodePunch(intro.nonce);
    const started = performance.now();
    const send = () => {
      for (const t of targets) this.endpoint.sendRaw(punch, t);
    };
    send();
    const timer = setInterval(() => {
      if (performance.now() - started >= PUNCH_FOR_MS) {
        clearInterval(timer);
        this.punching.delete(timer);
        return;
      }
      send();
    }, PUNCH_EVERY_MS);
    timer.unref();
    this.punching.add(timer);
    return true;
  }
}

/** Whether a datagram is a STUN message (RFC 8489: first two bits 0, magic cookie at offset 4). */
export function isStun(datagram: Buffer): boolean {
  return datagram.length >= 20 && (datagram[0]! & 0xc0) === 0 && datagram.readUInt32BE(4) === MAGIC_COOKIE;
}
