// A connection: what control and the UDP transport talk to instead of the socket. It is one end
// of a Noise session with another peer (PROTOCOL.md 3.6): every message it sends is sealed with
// the session's key and a fresh counter, every frame it accepts authenticated and checked against
// the replay window. Frames find it by its index, not by address, so it follows the other side
// across a NAT rebinding once the new address has answered a path challenge.
import { randomBytes } from 'node:crypto';
import { isLocalAddress } from '../core/addresses';
import { COUNTER_LIMIT, Opener, Sealer } from '../crypto/transport';
import { ReplayWindow } from '../crypto/replay';
import { hmacSha256 } from '../crypto/primitives';
import {
  decodeMessage,
  encodeMessageHeader,
  encodeSealedHeader,
  FrameType,
  LOCAL_MAX_DATAGRAM_BYTES,
  MAX_DATAGRAM_BYTES,
  SEALED_OVERHEAD,
  type Frame,
  type SealedFrame,
} from '../wire/frame';
import { RELAY_HEADER_BYTES } from '../wire/rendezvous';
import { firstHopDatagramLimit } from './route-mtu';

/**
 * Where datagrams for the other side go: its address and port, or, through a registry's relay
 * (PROTOCOL.md 9), the relay's address and port and the relay session the datagrams are wrapped in.
 */
export interface Remote {
  address: string;
  port: number;
  relay?: number;
}

export function sameRemote(a: Remote, b: Remote): boolean {
  return a.port === b.port && a.address === b.address && a.relay === b.relay;
}

/** Both direct or both relayed, both on this host or both not. */
function samePathKind(a: Remote, b: Remote): boolean {
  return (a.relay === undefined) === (b.relay === undefined) && isLocalAddress(a.address) === isLocalAddress(b.address);
}

export interface Connection {
  /** Where datagrams go: the validated address and port the other side last spoke from. */
  readonly remote: Remote;
  /** Bytes a datagram carries beyond the message body: 37 (sealed header, message header, tag). */
  readonly overhead: number;
  /** The largest message body one datagram carries: MAX_DATAGRAM_BYTES - overhead. */
  readonly maxBody: number;
  /**
   * The largest body a DATA this side sends may fill: maxBody, or more when the other side's
   * padded path challenge of that size arrived whole and was answered (PROTOCOL.md 6.10). The
   * requester's max payload, from its own confirmed probes, is what actually sets the chunk size.
   */
  readonly maxDataBody: number;
  /** The other side's static public key (32 bytes), authenticated by the handshake. */
  readonly peerKey: Buffer;
  /** Sends one message whose body is `parts` in order; never throws (a send after close is counted). */
  send(type: number, id: number, ...parts: Uint8Array[]): void;
  /** Bytes waiting in the socket: a sender backs off when the kernel cannot keep up. */
  queuedBytes(): number;
  /** True once nothing can be sent any more (socket closed, or the connection forgotten). */
  readonly closed: boolean;
  /** Keeps the connection from being forgotten while a session needs it; call the result when done. */
  hold(): () => void;
  /** Runs `listener` once when the connection ends (CLOSE from the other side, shutdown, eviction). */
  onForgotten(listener: () => void): void;
}

/** The socket side of a connection (the Endpoint). */
export interface DatagramSocket {
  readonly closed: boolean;
  /** Never throws: a datagram that cannot be sent is counted. */
  sendRaw(datagram: Buffer | Buffer[], to: Remote): void;
  /** Counts a send that could not happen (its connection was closed or not yet validated). */
  countUnsendable(): void;
  queuedBytes(): number;
}

export interface SessionKeys {
  send: Buffer;
  receive: Buffer;
  /** Keys TCP transfers on this session (PROTOCOL.md section 5). */
  tcpBase: Buffer;
  remoteStatic: Buffer;
}

/** What open() made of a sealed frame. */
export type Opened = { frame: Frame } | 'bad_auth' | 'replayed' | 'malformed';

/** At most one path challenge per this many milliseconds (a flood of moved frames costs nothing). */
const PATH_PROBE_SPACING_MS = 100;

export class SecureConnection implements Connection {
  /** Sealed frame overhead, plus the relay header on a relayed connection (fixed at the handshake). */
  readonly overhead: number;
  readonly peerKey: Buffer;
  readonly tcpBase: Buffer;
  /** performance.now() of the last authenticated frame (or of the handshake). */
  lastActive = performance.now();
  /**
   * The responder may send nothing on a connection until the initiator's first sealed frame
   * proves it got the RESP at its address (PROTOCOL.md 3.5). The initiator's is valid at once.
   */
  validated: boolean;
  /** Path validation (PROTOCOL.md 3.6, roaming): challenges sent, challenges refused (not from our path), moves made. */
  readonly path = { challenges: 0, refused: 0, moves: 0 };
  private readonly sealer: Sealer;
  private readonly opener: Opener;
  private readonly replay = new ReplayWindow();
  private counter = 0;
  private holds = 0;
  private forgotten = false;
  /** A path challenge to a new address (roaming). */
  private roaming: { to: Remote; data: Buffer; at: number } | undefined;
  /** Padded path challenges in flight (path MTU probes), by their data. */
  private readonly sizeProbes = new Map<string, { size: number; answered: () => void }>();
  /**
   * The largest datagram this connection sends: a network path's (1472) until a larger one is
   * proven (PROTOCOL.md 6.1). A session's chunk size is cut from it when the session starts.
   */
  private maxDatagram = MAX_DATAGRAM_BYTES;
  /** The largest datagram our own padded probes proved both ways (0: none yet). */
  private confirmed = 0;
  /** The largest padded path challenge of the other side that arrived whole and was answered. */
  private largestProbeIn = 0;
  private readonly onForget: Array<() => void> = [];

  constructor(
    readonly localIndex: number,
    readonly remoteIndex: number,
    public remote: Remote,
    keys: SessionKeys,
    readonly initiator: boolean,
    private readonly socket: DatagramSocket,
  ) {
    this.peerKey = keys.remoteStatic;
    this.tcpBase = keys.tcpBase;
    this.overhead = SEALED_OVERHEAD + (remote.relay !== undefined ? RELAY_HEADER_BYTES : 0);
    this.sealer = new Sealer(keys.send);
    this.opener = new Opener(keys.receive);
    this.validated = initiator;
  }

  get closed(): boolean {
    return this.forgotten || this.socket.closed;
  }

  get maxBody(): number {
    return this.maxDatagram - this.overhead;
  }

  get maxDataBody(): number {
    return Math.max(this.maxDatagram, this.largestProbeIn) - this.overhead;
  }

  /** The largest datagram (wire bytes, relay header included) our own probes proved both ways; 0 before any. */
  get confirmedDatagram(): number {
    return this.confirmed;
  }

  /**
   * Sends one path MTU probe: a path challenge padded to a datagram of `size` bytes, which the
   * other side answers with a path response of the same size (PROTOCOL.md 6.10). `answered` runs
   * once if that answer authenticates; from then on this connection may send datagrams that large.
   * Returns a function that forgets the probe (a late answer then proves nothing more).
   */
  sendSizeProbe(size: number, answered: () => void): () => void {
    const data = randomBytes(8);
    const key = data.toString('hex');
    this.sizeProbes.set(key, { size, answered });
    this.send(FrameType.pathChallenge, 0, data, Buffer.alloc(Math.max(0, size - this.overhead - data.length)));
    return () => this.sizeProbes.delete(key);
  }

  /** One probe of `size` (see sendSizeProbe): true when answered within `timeoutMs`. */
  probeSize(size: number, timeoutMs: number): Promise<boolean> {
    if (size <= this.confirmed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        forget();
        resolve(false);
      }, timeoutMs);
      const forget = this.sendSizeProbe(size, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  get held(): boolean {
    return this.holds > 0;
  }

  send(type: number, id: number, ...parts: Uint8Array[]): void {
    if (this.forgotten || !this.validated) return this.socket.countUnsendable();
    this.sendTo(this.remote, type, id, parts);
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

  /** Runs `listener` once when the connection is forgotten (closed by either side, idle, shutdown). */
  onForgotten(listener: () => void): void {
    if (this.forgotten) listener();
    else this.onForget.push(listener);
  }

  /** The endpoint dropped it from its table: its frames are refused from now on. */
  forget(): void {
    if (this.forgotten) return;
    this.forgotten = true;
    for (const l of this.onForget.splice(0)) l();
  }

  /** The TCP keys of one session on this connection: one per direction, never reused (each session ID is used once, PROTOCOL.md 4.3). */
  tcpKeys(sessionId: number): { requesterToOwner: Buffer; ownerToRequester: Buffer } {
    const id = Buffer.allocUnsafe(4);
    id.writeUInt32BE(sessionId >>> 0);
    return {
      requesterToOwner: hmacSha256(this.tcpBase, Buffer.from('c2s'), id),
      ownerToRequester: hmacSha256(this.tcpBase, Buffer.from('s2c'), id),
    };
  }

  /**
   * Authenticates a sealed frame addressed to this connection and returns its message. Path
   * messages are handled here; a frame from a new address with the highest counter so far
   * starts a path challenge towards it.
   */
  open(f: SealedFrame, from: Remote): Opened {
    if (this.forgotten) return 'bad_auth';
    if (!this.replay.check(f.counter)) return 'replayed';
    const plaintext = this.opener.open(f.counter, f.header, f.sealed);
    if (!plaintext) return 'bad_auth';
    const newest = f.counter > this.replay.highest;
    this.replay.accept(f.counter);
    this.lastActive = performance.now();
    const frame = decodeMessage(plaintext);
    if (!frame) return 'malformed';
    const moved = !sameRemote(from, this.remote);
    if (!this.validated && !moved) this.validated = true;
    // The datagram as it crossed the path, relay header included (probe sizes count the same way).
    const size = f.header.length + f.sealed.length + (from.relay !== undefined ? RELAY_HEADER_BYTES : 0);
    // A larger datagram that arrived whole on this path proves the path carries it (this way at least).
    if (!moved && size > this.maxDatagram && from.relay === undefined && isLocalAddress(from.address)) this.maxDatagram = Math.min(size, LOCAL_MAX_DATAGRAM_BYTES);
    if (frame.type === FrameType.pathChallenge) {
      // The challenger is the side that did not move, so its challenge comes from our path. One
      // from elsewhere is a copy passed on by whoever wants our answer at its own address, to be
      // handed to the challenger as proof that the path through it is ours: never answered.
      // Answered with the same data, padded to the same size: never more than was asked.
      if (moved) this.path.refused++;
      else if (frame.body.length === 8 || (frame.body.length > 8 && this.answersProbe(size, from.address))) {
        this.sendTo(from, FrameType.pathResponse, 0, [frame.body.subarray(0, 8), Buffer.alloc(frame.body.length - 8)]);
      }
      return { frame };
    }
    if (frame.type === FrameType.pathResponse) {
      const data = frame.body.subarray(0, 8);
      const key = data.toString('hex');
      const sized = !moved ? this.sizeProbes.get(key) : undefined;
      if (sized && size >= sized.size) {
        this.sizeProbes.delete(key);
        this.maxDatagram = Math.max(this.maxDatagram, sized.size);
        this.confirmed = Math.max(this.confirmed, sized.size);
        sized.answered();
      }
      const p = this.roaming;
      if (p && data.equals(p.data) && sameRemote(from, p.to)) {
        this.remote = p.to;
        this.validated = true;
        this.roaming = undefined;
        this.path.moves++;
      }
      return { frame };
    }
    // A connection stays on one kind of path (direct or relayed, on this host or not): its
    // datagram size was chosen for it.
    if (moved && newest && samePathKind(from, this.remote)) this.challenge(from);
    return { frame };
  }

  /** A path challenge to a new address (PROTOCOL.md 3.6, roaming); the old one is used meanwhile. */
  private challenge(to: Remote): void {
    const now = performance.now();
    if (this.roaming && now - this.roaming.at < PATH_PROBE_SPACING_MS) return;
    this.roaming = { to, data: randomBytes(8), at: now };
    this.path.challenges++;
    this.sendTo(to, FrameType.pathChallenge, 0, [this.roaming.data]);
  }

  /**
   * Whether a padded path challenge (a path MTU probe) of `size` bytes gets its padded answer
   * (PROTOCOL.md 6.10). Node cannot set DF, and Linux then fragments, silently, a datagram larger
   * than the first hop's MTU or than a path MTU it learned from an ICMP "fragmentation needed":
   * an answer so fragmented would arrive whole and prove a size the path does not carry. So no
   * answer larger than our first hop, and each answer larger than every one before: a retry
   * after an answer was dropped on the way (and its ICMP lowered the kernel's path MTU) gets none.
   */
  private answersProbe(size: number, address: string): boolean {
    if (size <= this.largestProbeIn || size > firstHopDatagramLimit(address)) return false;
    this.largestProbeIn = size;
    return true;
  }

  private sendTo(to: Remote, type: number, id: number, parts: readonly Uint8Array[]): void {
    if (this.counter >= COUNTER_LIMIT) return this.socket.countUnsendable(); // never reached in practice
    const counter = this.counter++;
    const header = encodeSealedHeader(this.remoteIndex, counter);
    this.socket.sendRaw([header, this.sealer.seal(counter, header, encodeMessageHeader(type, id), ...parts)], to);
  }
}
