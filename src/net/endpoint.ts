// A peer's one UDP socket: decodes frames, counts what it drops, and routes frames to handlers
// by type. Control (control/) and UDP transfers (transfer/udp/) both sit on top of it, so the owner
// answers and sends everything from its one port (PROTOCOL.md section 2, NAT-ready).
import dgram from 'node:dgram';
import { listening } from '../core/async';
import { decodeFrame, encodeFrame, FrameType, PROTOCOL_VERSION, type Frame } from '../wire/frame';

export interface Remote {
  address: string;
  port: number;
}

export type FrameHandler = (frame: Frame, from: Remote) => void;

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

export class Endpoint {
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
  /** Datagrams handed to the socket whose send has not completed yet. */
  private unsent = 0;
  private onDrained: (() => void) | undefined;
  private readonly handlers = new Map<number, FrameHandler>();
  private lastVersionReply = 0;

  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (msg, rinfo) => this.onMessage(msg, { address: rinfo.address, port: rinfo.port }));
    // A send to an unreachable port can surface as an async error on some platforms: never fatal.
    socket.on('error', () => {});
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

  send(type: number, id: number, body: Uint8Array, to: Remote, cb?: (err: Error | null) => void): void {
    this.sendRaw(encodeFrame(type, id, body), to, cb);
  }

  sendRaw(datagram: Buffer, to: Remote, cb?: (err: Error | null) => void): void {
    this.sent++;
    this.socket.send(datagram, to.port, to.address, (err) => {
      if (--this.unsent === 0) this.onDrained?.();
      cb?.(err ?? null);
    });
    this.unsent++; // after send(): it throws, without calling back, on a closed socket
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

  private onMessage(msg: Buffer, from: Remote): void {
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
      handler(frame, from);
    } catch {
      // A handler bug must not take the socket down; the frame counts as rejected.
      this.drops.rejected++;
    }
  }

  /** Tells a peer of another version which one we speak; at most 10 a second (no amplification). */
  private answerVersion(frame: Frame, to: Remote): void {
    const now = Date.now();
    if (now - this.lastVersionReply < 100 || frame.type === FrameType.versionNotSupported) return;
    this.lastVersionReply = now;
    this.send(FrameType.versionNotSupported, frame.id, Buffer.from([PROTOCOL_VERSION, PROTOCOL_VERSION]), to);
  }
}

/** Sends a frame unless the socket is already closed (a late timer after the exchange ended). */
export function safeSend(endpoint: Endpoint, type: number, id: number, body: Uint8Array, to: Remote): void {
  try {
    endpoint.send(type, id, body, to);
  } catch {
    // ERR_SOCKET_DGRAM_NOT_RUNNING: nobody is listening for this any more
  }
}
