// A peer's one UDP socket: decodes frames, counts what it drops, and routes frames to handlers
// by type, each with the connection of the address it came from. Control (control/) and UDP
// transfers (transfer/udp/) both sit on top of it, so the owner answers and sends everything
// from its one port (PROTOCOL.md section 2, NAT-ready).
import dgram from 'node:dgram';
import { listening } from '../core/async';
import { decodeFrame, encodeFrame, FrameType, PROTOCOL_VERSION, type Frame } from '../wire/frame';
import { PlainConnection, type Connection, type DatagramSocket, type Remote } from './connection';

export type FrameHandler = (frame: Frame, conn: Connection) => void;

export interface DropCounters {
  too_short: number;
  too_long: number;
  bad_magic: number;
  bad_checksum: number;
  bad_version: number;
  unknown_type: number;
  /** A handler rejected the frame's body (malformed, stale session, ...). */
  rejected: number;
}

/** How long close() waits for datagrams already handed to send(). */
const CLOSE_DRAIN_MS = 100;
/** Connections remembered at most; past this, ones nobody holds are forgotten (idle ones first). */
const MAX_CONNECTIONS = 4096;
/** A connection without a frame for this long is idle. */
const IDLE_MS = 60_000;

export class Endpoint implements DatagramSocket {
  readonly drops: DropCounters = {
    too_short: 0,
    too_long: 0,
    bad_magic: 0,
    bad_checksum: 0,
    bad_version: 0,
    unknown_type: 0,
    rejected: 0,
  };
  received = 0;
  sent = 0;
  /** Sends that could not happen: the socket or the connection was closed. */
  unsendable = 0;
  private isClosed = false;
  /** Datagrams handed to the socket whose send has not completed yet. */
  private unsent = 0;
  private onDrained: (() => void) | undefined;
  private readonly handlers = new Map<number, FrameHandler>();
  private readonly conns = new Map<string, PlainConnection>();
  /** The connection of the last frame: a transfer's datagrams skip the table lookup. */
  private last: PlainConnection | undefined;
  private lastVersionReply = 0;

  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    // A send to an unreachable port can surface as an async error on some platforms: never fatal.
    socket.on('error', () => {});
    socket.once('close', () => (this.isClosed = true));
  }

  /** Binds a UDP socket (IPv4; port 0 picks a free one). */
  static async bind(port = 0, host = '0.0.0.0', bufferBytes = 4 * 1024 * 1024): Promise<Endpoint> {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: bufferBytes, sendBufferSize: bufferBytes });
    await listening(socket, (done) => socket.bind(port, host, done));
    return new Endpoint(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Connections in the table (each remote that sent a handled frame, or was connected to). */
  get connections(): number {
    return this.conns.size;
  }

  /** The connection to `remote`: the one its frames arrive on, made now if there is none. */
  connect(remote: Remote): Connection {
    return this.connectionOf(remote.address, remote.port);
  }

  /** Registers the handler for a frame type; one handler per type. */
  on(type: number, handler: FrameHandler): void {
    this.handlers.set(type, handler);
  }

  off(type: number): void {
    this.handlers.delete(type);
  }

  /** Counts a frame a handler could not use. */
  reject(): void {
    this.drops.rejected++;
  }

  /** Runs `listener` once the socket is closed. */
  onClose(listener: () => void): void {
    this.socket.once('close', listener);
  }

  sendRaw(datagram: Buffer, to: Remote): void {
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
    // What was handed to send() (a last ABORT or DONE) leaves before the socket closes; bounded.
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

  private onMessage(msg: Buffer, from: dgram.RemoteInfo): void {
    this.received++;
    const frame = decodeFrame(msg);
    if (typeof frame === 'string') {
      this.drops[frame]++;
      return;
    }
    // VERSION_NOT_SUPPORTED is understood whatever version its sender speaks (PROTOCOL.md 3.1).
    if (frame.version !== PROTOCOL_VERSION && frame.type !== FrameType.versionNotSupported) {
      this.drops.bad_version++;
      this.answerVersion(frame, from);
      return;
    }
    const handler = this.handlers.get(frame.type);
    if (!handler) {
      this.drops.unknown_type++;
      return;
    }
    try {
      handler(frame, this.connectionOf(from.address, from.port));
    } catch {
      // A handler bug must not take the socket down; the frame counts as rejected.
      this.drops.rejected++;
    }
  }

  private connectionOf(address: string, port: number): PlainConnection {
    let c = this.last;
    if (!c || c.remote.port !== port || c.remote.address !== address) {
      const key = `${address}|${port}`;
      c = this.conns.get(key);
      if (!c) {
        c = new PlainConnection({ address, port }, this);
        this.conns.set(key, c);
        if (this.conns.size > MAX_CONNECTIONS) this.forgetSome(c);
      }
      this.last = c;
    }
    c.lastActive = performance.now();
    return c;
  }

  /** Forgets connections nobody holds (but `keep`), idle ones first, then the oldest, down to 3/4 of the cap. */
  private forgetSome(keep: PlainConnection): void {
    const now = performance.now();
    for (const idleOnly of [true, false]) {
      for (const [key, c] of this.conns) {
        if (this.conns.size <= (MAX_CONNECTIONS * 3) / 4) return;
        if (c === keep || c.held || (idleOnly && now - c.lastActive < IDLE_MS)) continue;
        this.conns.delete(key);
        c.forget();
        if (this.last === c) this.last = undefined;
      }
    }
  }

  /** Tells a peer of another version which one we speak; at most 10 a second (no amplification). */
  private answerVersion(frame: Frame, to: Remote): void {
    const now = Date.now();
    if (now - this.lastVersionReply < 100 || frame.type === FrameType.versionNotSupported) return;
    this.lastVersionReply = now;
    this.sendRaw(encodeFrame(FrameType.versionNotSupported, frame.id, Buffer.from([PROTOCOL_VERSION, PROTOCOL_VERSION])), to);
  }
}
