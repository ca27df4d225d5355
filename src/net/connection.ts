// A connection: what control and the UDP transport talk to instead of the socket. It sends
// frames to one remote and says how much room a frame body has. In protocol version 1 it is a
// plain connection (the frame in the clear, PROTOCOL.md section 3) keyed by the remote's
// address; the seam is where a sealed connection (keys, counters, its own overhead) fits later.
import { encodeFrame, FRAME_OVERHEAD, MAX_DATAGRAM_BYTES } from '../wire/frame';

export interface Remote {
  address: string;
  port: number;
}

export interface Connection {
  /** Where datagrams go: the exact address and port the other side last spoke from. */
  readonly remote: Remote;
  /** Bytes a datagram carries beyond the message body (version 1: 12, frame header and CRC). */
  readonly overhead: number;
  /** The largest message body one datagram carries: MAX_DATAGRAM_BYTES - overhead. */
  readonly maxBody: number;
  /** Sends one frame whose body is `parts` in order; never throws (a send after close is counted). */
  send(type: number, id: number, ...parts: Uint8Array[]): void;
  /** Bytes waiting in the socket: a sender backs off when the kernel cannot keep up. */
  queuedBytes(): number;
  /** True once nothing can be sent any more (socket closed, or the connection forgotten). */
  readonly closed: boolean;
  /** Keeps the connection from being forgotten while a session needs it; call the result when done. */
  hold(): () => void;
}

/** The socket side of a plain connection (the Endpoint). */
export interface DatagramSocket {
  readonly closed: boolean;
  /** Never throws: a datagram that cannot be sent is counted. */
  sendRaw(datagram: Buffer, to: Remote): void;
  /** Counts a send that could not happen (its connection was closed). */
  countUnsendable(): void;
  queuedBytes(): number;
}

/** Version 1: every frame in the clear, straight to the remote. */
export class PlainConnection implements Connection {
  readonly overhead = FRAME_OVERHEAD;
  readonly maxBody = MAX_DATAGRAM_BYTES - FRAME_OVERHEAD;
  /** performance.now() of the last frame from the remote (or of its creation). */
  lastActive = performance.now();
  private holds = 0;
  private forgotten = false;

  constructor(
    readonly remote: Remote,
    private readonly socket: DatagramSocket,
  ) {}

  get closed(): boolean {
    return this.forgotten || this.socket.closed;
  }

  get held(): boolean {
    return this.holds > 0;
  }

  send(type: number, id: number, ...parts: Uint8Array[]): void {
    if (this.forgotten) return this.socket.countUnsendable();
    this.socket.sendRaw(encodeFrame(type, id, parts), this.remote);
  }

  queuedBytes(): number {
    return this.socket.queuedBytes();
  }

  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
    };
  }

  /** The endpoint dropped it from its table: a frame from the remote now makes a new one. */
  forget(): void {
    this.forgotten = true;
  }
}
