// A peer's one UDP socket (PROTOCOL.md sections 2 and 3): checks every datagram's envelope,
// answers handshakes (when it serves a name) or starts them (dial.ts), holds the connections
// they make (connection-table.ts), opens sealed frames and routes their messages by type to
// handlers, each with its connection.
// Control (control/) and UDP transfers (transfer/udp/) both sit on top of it, so the owner
// answers and sends everything from its one port.
import dgram from 'node:dgram';
import { listening } from '../core/async';
import { P2pError } from '../core/errors';
import type { PrivateKey } from '../core/x25519';
import { checkDatagram, decodeClearFrame, decodeSealedFrame, Envelope, envelopeOf, FrameType, PROTOCOL_VERSION, type ClearFrame, type Frame } from '../wire/frame';
import { encodeRelayHeader, RELAY_HEADER_BYTES } from '../wire/rendezvous';
import { encodeVersionNotSupported } from '../wire/handshake';
import { AddressBudget } from './budget';
import type { Connection, DatagramSocket, Remote, SecureConnection } from './connection';
import { ConnectionTable } from './connection-table';
import { Dialer, type DialOptions } from './dial';
import { DEFAULT_HANDSHAKE_LIMITS, Responder, type HandshakeLimits } from './handshake';

export type FrameHandler = (frame: Frame, conn: SecureConnection) => void;
/** A clear frame of another layer's type, with its whole datagram (for macs); false when refused. */
export type ClearHandler = (frame: ClearFrame, datagram: Buffer, from: Remote) => boolean;

export interface DropCounters {
  too_short: number;
  too_long: number;
  bad_magic: number;
  bad_checksum: number;
  bad_version: number;
  unknown_type: number;
  /** A sealed frame that did not authenticate, or named no connection of ours. */
  bad_auth: number;
  /** A sealed frame whose counter was seen before or is below the replay window. */
  replayed: number;
  /** An INIT whose mac1 is not for our key. */
  bad_mac: number;
  /** A handler rejected the message's body (malformed, stale session, ...), or a handshake frame was refused. */
  rejected: number;
}

export interface EndpointOptions {
  identity: PrivateKey;
  /** Answer handshakes as the owner of this name (a requester-only endpoint answers none). */
  serveName?: string;
  handshakeLimits?: Partial<HandshakeLimits>;
  /** Connections held at most (default 4096); past this, ones nobody holds are forgotten. */
  maxConnections?: number;
  /** Buffer sizes of the socket. */
  bufferBytes?: number;
}

/** How long close() waits for datagrams already handed to send(). */
const CLOSE_DRAIN_MS = 100;
const MAX_CONNECTIONS = 4096;
const MAX_RELAYS = 1024;
const RELAY_IDLE_MS = 600_000;

function relayKey(address: string, port: number, session: number): string {
  return `${address}|${port}|${session >>> 0}`;
}

export class Endpoint implements DatagramSocket {
  readonly drops: DropCounters = {
    too_short: 0,
    too_long: 0,
    bad_magic: 0,
    bad_checksum: 0,
    bad_version: 0,
    unknown_type: 0,
    bad_auth: 0,
    replayed: 0,
    bad_mac: 0,
    rejected: 0,
  };
  /** What the handshake did: answers, cookies handed out, connections made. */
  readonly handshakes = { accepted: 0, cookies: 0, rateLimited: 0, replayed: 0, connected: 0 };
  received = 0;
  sent = 0;
  /** Sends that could not happen: socket or connection closed, address not validated, budget spent. */
  unsendable = 0;
  private isClosed = false;
  /** Datagrams handed to the socket whose send has not completed yet. */
  private unsent = 0;
  private onDrained: (() => void) | undefined;
  private readonly handlers = new Map<number, FrameHandler>();
  private readonly clearHandlers = new Map<number, ClearHandler>();
  private foreignHandler: ((datagram: Buffer, from: Remote) => boolean) | undefined;
  /** Relay sessions taken, by relay address and session: when a datagram last came through. */
  private readonly relays = new Map<string, number>();
  private readonly conns: ConnectionTable;
  private readonly responder: Responder | undefined;
  private readonly dialer: Dialer;
  private readonly budget = new AddressBudget();
  private readonly sweeper: NodeJS.Timeout;
  private lastVersionReply = 0;

  private constructor(
    readonly socket: dgram.Socket,
    readonly identity: PrivateKey,
    opts: EndpointOptions,
  ) {
    this.conns = new ConnectionTable(this, opts.maxConnections ?? MAX_CONNECTIONS);
    this.dialer = new Dialer(identity, this.conns, (datagram, to) => this.sendRaw(datagram, to), () => this.handshakes.connected++);
    if (opts.serveName !== undefined) this.responder = new Responder(identity, opts.serveName, { ...DEFAULT_HANDSHAKE_LIMITS, ...opts.handshakeLimits });
    socket.on('message', (msg, rinfo) => this.onMessage(msg, { address: rinfo.address, port: rinfo.port }));
    // A send to an unreachable port can surface as an async error on some platforms: never fatal.
    socket.on('error', () => {});
    socket.once('close', () => {
      this.isClosed = true;
      clearInterval(this.sweeper);
      this.conns.clear();
    });
    this.sweeper = setInterval(() => this.sweep(), 1000).unref();
  }

  /** Binds a UDP socket (IPv4; port 0 picks a free one). */
  static async bind(port: number, host: string, opts: EndpointOptions): Promise<Endpoint> {
    const bufferBytes = opts.bufferBytes ?? 4 * 1024 * 1024;
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: bufferBytes, sendBufferSize: bufferBytes });
    await listening(socket, (done) => socket.bind(port, host, done));
    return new Endpoint(socket, opts.identity, opts);
  }

  get port(): number {
    return this.socket.address().port;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Connections in the table (validated or half-open). */
  get connections(): number {
    return this.conns.size;
  }

  /** Connections this responder made whose initiator has not yet sent an authenticated frame. */
  get halfOpenConnections(): number {
    return this.conns.halfOpen;
  }

  /** The connection with this local index (the TCP server finds a requester's session by it). */
  connection(index: number): SecureConnection | undefined {
    const c = this.conns.get(index);
    return c && c.validated && !c.closed ? c : undefined;
  }

  /** Handshakes with the owner `o.ownerName` at any of `candidates` (Dialer.dial). */
  async handshake(candidates: Remote | Remote[], o: DialOptions): Promise<SecureConnection> {
    if (this.isClosed) throw new P2pError('ABORTED', 'the UDP socket is closed');
    return this.dialer.dial(Array.isArray(candidates) ? candidates : [candidates], o);
  }

  /** Tells the other side this connection is done (CLOSE) and forgets it. */
  closeConnection(conn: Connection): void {
    const c = conn as SecureConnection;
    if (c.closed) return;
    c.send(FrameType.close, 0);
    this.conns.drop(c);
  }

  /** Registers the handler for a message type; one handler per type. */
  on(type: number, handler: FrameHandler): void {
    this.handlers.set(type, handler);
  }

  off(type: number): void {
    this.handlers.delete(type);
  }

  /** Counts a message a handler could not use. */
  reject(): void {
    this.drops.rejected++;
  }

  /** Runs `listener` once the socket is closed. */
  onClose(listener: () => void): void {
    this.socket.once('close', listener);
  }

  sendRaw(datagram: Buffer | Buffer[], to: Remote): void {
    // Through a relay: the whole datagram, wrapped for the relay session (PROTOCOL.md 9).
    if (to.relay !== undefined) datagram = [encodeRelayHeader(to.relay), ...(Array.isArray(datagram) ? datagram : [datagram])];
    try {
      this.socket.send(datagram, to.port, to.address, () => {
        if (--this.unsent === 0) this.onDrained?.();
      });
    } catch {
      // ERR_SOCKET_DGRAM_NOT_RUNNING (a late timer after the exchange ended): nobody listens any more
      return this.countUnsendable();
    }
    this.sent++;
    this.unsent++;
  }

  countUnsendable(): void {
    this.unsendable++;
  }

  queuedBytes(): number {
    try {
      return this.socket.getSendQueueSize();
    } catch {
      return 0; // closed: sends are no-ops from here
    }
  }

  async close(): Promise<void> {
    // What was handed to send() (a last ABORT, DONE or CLOSE) leaves before the socket closes; bounded.
    if (this.unsent > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_DRAIN_MS);
        this.onDrained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.onDrained = undefined;
    }
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
  }

  /**
   * Takes datagrams of relay session `session` from the relay at `relay` (the rendezvous that
   * offered it): unwrapped, they count as coming from that relay path. Forgotten after 10 minutes
   * without a datagram; at most 1024 at once.
   */
  acceptRelay(relay: Remote, session: number): void {
    const key = relayKey(relay.address, relay.port, session);
    this.relays.delete(key);
    this.relays.set(key, performance.now());
    if (this.relays.size > MAX_RELAYS) this.relays.delete(this.relays.keys().next().value!);
  }

  /** Handles clear frames of a type this layer does not know (the rendezvous with a registry, PROTOCOL.md 9). */
  onClear(type: number, handler: ClearHandler): void {
    this.clearHandlers.set(type, handler);
  }

  offClear(type: number): void {
    this.clearHandlers.delete(type);
  }

  /** Handles datagrams that are not ours at all (STUN answers from the registry); false: refused. */
  onForeign(handler: (datagram: Buffer, from: Remote) => boolean): void {
    this.foreignHandler = handler;
  }

  private onMessage(msg: Buffer, from: Remote): void {
    this.received++;
    const bad = checkDatagram(msg);
    if (bad) {
      if (bad === 'bad_magic' && from.relay === undefined && this.foreignHandler?.(msg, from)) return;
      this.drops[bad]++;
      return;
    }
    const { version, type } = envelopeOf(msg);
    if (type === Envelope.sealed && version === PROTOCOL_VERSION) return this.onSealed(msg, from);
    if (type === Envelope.relay && version === PROTOCOL_VERSION) return this.onRelayed(msg, from);
    const frame = decodeClearFrame(msg);
    if (typeof frame === 'string') {
      this.drops[frame]++;
      return;
    }
    this.budget.received(from, msg.length);
    // VERSION_NOT_SUPPORTED is understood whatever version its sender speaks (PROTOCOL.md 3.2).
    if (frame.type === Envelope.versionNotSupported) {
      if (!this.dialer.onVersionNotSupported(frame, from)) this.drops.rejected++;
      return;
    }
    if (frame.version !== PROTOCOL_VERSION) {
      this.drops.bad_version++;
      return this.answerVersion(frame, from);
    }
    if (type === Envelope.handshakeInit) return this.onInit(msg, frame, from);
    if (type === Envelope.handshakeResp) {
      if (!this.dialer.onResp(frame, from)) this.drops.rejected++;
      return;
    }
    if (type === Envelope.cookieReply) {
      if (!this.dialer.onCookieReply(frame)) this.drops.rejected++;
      return;
    }
    const handler = this.clearHandlers.get(type);
    if (!handler) {
      this.drops.unknown_type++;
      return;
    }
    try {
      if (!handler(frame, msg, from)) this.drops.rejected++;
    } catch {
      this.drops.rejected++;
    }
  }

  /** A datagram through a relay session this endpoint takes: handled as if from the relay path. */
  private onRelayed(msg: Buffer, from: Remote): void {
    if (from.relay !== undefined || msg.length <= RELAY_HEADER_BYTES) {
      this.drops.rejected++; // a relay inside a relay, or nothing inside
      return;
    }
    const session = msg.readUInt32BE(4);
    const key = relayKey(from.address, from.port, session);
    if (!this.relays.has(key)) {
      this.drops.rejected++;
      return;
    }
    this.relays.set(key, performance.now());
    this.received--; // the inner datagram counts, not its wrapping
    this.onMessage(msg.subarray(RELAY_HEADER_BYTES), { address: from.address, port: from.port, relay: session });
  }

  private onSealed(msg: Buffer, from: Remote): void {
    const f = decodeSealedFrame(msg);
    const conn = f && this.conns.get(f.receiverIndex);
    if (!f || !conn) {
      this.drops.bad_auth++;
      return;
    }
    const wasValidated = conn.validated;
    const opened = conn.open(f, from);
    if (opened === 'bad_auth' || opened === 'replayed') {
      this.drops[opened]++;
      return;
    }
    if (opened === 'malformed') {
      this.drops.rejected++;
      return;
    }
    if (!wasValidated && conn.validated) {
      this.conns.validated();
      this.budget.validated(from);
    }
    const { frame } = opened;
    if (frame.type === FrameType.pathChallenge || frame.type === FrameType.pathResponse) return;
    if (frame.type === FrameType.close) return this.conns.drop(conn);
    const handler = this.handlers.get(frame.type);
    if (!handler) {
      this.drops.unknown_type++;
      return;
    }
    try {
      handler(frame, conn);
    } catch {
      // A handler bug must not take the socket down; the message counts as rejected.
      this.drops.rejected++;
    }
  }

  private onInit(msg: Buffer, frame: ClearFrame, from: Remote): void {
    if (!this.responder) {
      this.drops.rejected++; // a requester serves no one
      return;
    }
    const outcome = this.responder.onInit(msg, frame, from, this.conns.halfOpen);
    if ('drop' in outcome) {
      if (outcome.drop === 'bad_mac') this.drops.bad_mac++;
      else this.drops.rejected++;
      if (outcome.drop === 'rate_limited') this.handshakes.rateLimited++;
      if (outcome.drop === 'replayed') this.handshakes.replayed++;
      return;
    }
    if ('cookie' in outcome) {
      this.handshakes.cookies++;
      this.sendClear(outcome.cookie, from);
      return;
    }
    const conn = this.conns.add(outcome.accept.keys, outcome.accept.initiatorIndex, from, false);
    this.handshakes.accepted++;
    this.sendClear(outcome.reply(conn.localIndex), from);
  }

  /** A clear frame to an address that may not have completed a handshake: within its byte budget. */
  private sendClear(datagram: Buffer, to: Remote): void {
    if (!this.budget.allow(to, datagram.length)) return this.countUnsendable();
    this.sendRaw(datagram, to);
  }

  /** Half-open connections past their time, idle ones nobody holds, idle relay sessions are forgotten. */
  private sweep(): void {
    const now = performance.now();
    this.conns.sweep(now);
    this.budget.sweep();
    for (const [k, at] of this.relays) if (now - at > RELAY_IDLE_MS) this.relays.delete(k);
  }

  /** Tells a peer of another version which one we speak; at most 10 a second (no amplification). */
  private answerVersion(frame: ClearFrame, to: Remote): void {
    const now = Date.now();
    if (now - this.lastVersionReply < 100) return;
    this.lastVersionReply = now;
    this.sendClear(encodeVersionNotSupported(frame.id, frame.version), to);
  }
}
