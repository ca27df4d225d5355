// A TCP proxy for tests and benchmarks: every accepted connection is relayed to `target` with a
// one-way delay per direction and an optional rate limit per direction (shared by all
// connections, like one link). It never drops a byte: it splits the TCP connection, so the
// endpoints see no loss; a slow reader is pushed back on through bounded buffering (the source
// socket is paused while too much is held in the delay line). It alters bytes only when told
// to (`corruptToClient`, `corruptToTarget`: one bit flipped at chosen offsets of a stream, as
// corruption TCP's checksum missed or an on-path attacker would make), and records both
// directions with `capture`.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Capture, TimedQueue, type Address, type CaptureOptions } from './relay';

/** Where to flip one bit of a direction's stream; offsets count from each connection's first byte. */
export interface StreamCorruption {
  /** These byte offsets. */
  at?: number[];
  /** And every this many bytes: offsets every-1, 2*every-1, ... */
  everyBytes?: number;
  /** Only the first this many connections (default: all). */
  connections?: number;
  /** The bit of the byte flipped, 0 (lowest) to 7; default 0. */
  bit?: number;
}

export interface TcpProxyOptions {
  target: Address;
  /** Port to listen on (0 = free); may be the same number as a UdpRelay's port. */
  port?: number;
  host?: string;
  /** One-way delay applied in both directions, unless the per-direction value is given. */
  delayMs?: number;
  toTargetDelayMs?: number;
  toClientDelayMs?: number;
  /** Serialisation rate per direction (Mbit/s), shared by all connections; 0/undefined = none. */
  rateMbit?: number;
  /** Bytes one direction of one connection may hold before its source is paused (default 4 MiB). */
  maxBufferedBytes?: number;
  /** Flip bits of the target->client stream (the owner's records to the requester). */
  corruptToClient?: StreamCorruption;
  /** Flip bits of the client->target stream (the requester's hello). */
  corruptToTarget?: StreamCorruption;
  /** Record every piece both ways as it arrives, before any corruption (see Capture). */
  capture?: CaptureOptions;
}

/** One flipped bit: which connection (from 1), which direction, which byte of that stream. */
export interface Flip {
  connection: number;
  direction: 'toTarget' | 'toClient';
  offset: number;
}

export interface TcpProxyCounters {
  connections: number;
  bytesToTarget: number;
  bytesToClient: number;
  /** Bits flipped (corruptToClient / corruptToTarget). */
  corrupted: number;
}

const PIECE_BYTES = 16 * 1024; // rate-limited data leaves in pieces this size, so pacing is smooth

/** A serialising link shared by every connection in one direction. */
class Pacer {
  private freeAt = 0;
  constructor(private readonly bytesPerMs: number) {}
  /** When a piece of `bytes` handed over now has been serialised. */
  departure(now: number, bytes: number): number {
    if (!this.bytesPerMs) return now;
    this.freeAt = Math.max(now, this.freeAt) + bytes / this.bytesPerMs;
    return this.freeAt;
  }
}

/** The function that flips the bits `c` asks for in one direction of one connection, or undefined. */
function flipper(c: StreamCorruption | undefined, connection: number, onFlip: (offset: number) => void): ((chunk: Buffer) => Buffer) | undefined {
  if (!c || (c.connections !== undefined && connection > c.connections)) return undefined;
  const mask = 1 << (c.bit ?? 0);
  let seen = 0;
  return (chunk) => {
    const start = seen;
    seen += chunk.length;
    const offsets = (c.at ?? []).filter((o) => o >= start && o < seen);
    if (c.everyBytes) for (let o = Math.ceil((start + 1) / c.everyBytes) * c.everyBytes - 1; o < seen; o += c.everyBytes) offsets.push(o);
    if (offsets.length === 0) return chunk;
    const out = Buffer.from(chunk); // the capture keeps what arrived
    for (const o of offsets) {
      out[o - start]! ^= mask;
      onFlip(o);
    }
    return out;
  };
}

/** One direction of one connection: src -> (corruption, rate, delay) -> dst, with bounded buffering. */
function pipeDelayed(
  src: net.Socket,
  dst: net.Socket,
  delayMs: number,
  pacer: Pacer,
  maxBuffered: number,
  count: (n: number) => void,
  observe: (chunk: Buffer) => Buffer = (chunk) => chunk,
): TimedQueue<Buffer | null> {
  let held = 0;
  let lastAt = 0;
  const over = () => held + dst.writableLength > maxBuffered;
  const maybeResume = () => {
    if (src.isPaused() && !over()) src.resume();
  };
  const line = new TimedQueue<Buffer | null>((piece) => {
    if (piece === null) {
      dst.end();
      return;
    }
    held -= piece.length;
    count(piece.length);
    if (!dst.destroyed) dst.write(piece);
    maybeResume();
  });
  dst.on('drain', maybeResume);
  src.on('data', (arrived: Buffer) => {
    const chunk = observe(arrived);
    for (let off = 0; off < chunk.length; off += PIECE_BYTES) {
      const piece = chunk.subarray(off, Math.min(chunk.length, off + PIECE_BYTES));
      const now = performance.now();
      lastAt = Math.max(lastAt, pacer.departure(now, piece.length) + delayMs);
      held += piece.length;
      line.push(lastAt, piece);
    }
    if (over()) src.pause();
  });
  src.on('end', () => line.push(Math.max(lastAt, performance.now() + delayMs), null));
  return line;
}

export class TcpProxy {
  readonly counters: TcpProxyCounters = { connections: 0, bytesToTarget: 0, bytesToClient: 0, corrupted: 0 };
  /** Every bit flipped, in order. */
  readonly flips: Flip[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    /** Both directions of every connection, when started with `capture` (stream = connection number). */
    readonly capture: Capture | undefined,
  ) {}

  static async start(o: TcpProxyOptions): Promise<TcpProxy> {
    const bytesPerMs = o.rateMbit && o.rateMbit > 0 ? (o.rateMbit * 1e6) / 8 / 1000 : 0;
    const up = new Pacer(bytesPerMs);
    const down = new Pacer(bytesPerMs);
    const maxBuffered = o.maxBufferedBytes ?? 4 * 1024 * 1024;
    const toTargetDelay = o.toTargetDelayMs ?? o.delayMs ?? 0;
    const toClientDelay = o.toClientDelayMs ?? o.delayMs ?? 0;
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
    const proxy = new TcpProxy(server, o.capture ? new Capture(o.capture) : undefined);
    // What arrives in one direction of connection n: recorded, then maybe corrupted.
    const observer = (n: number, direction: Flip['direction'], c: StreamCorruption | undefined) => {
      const flip = flipper(c, n, (offset) => {
        proxy.counters.corrupted++;
        proxy.flips.push({ connection: n, direction, offset });
      });
      return (chunk: Buffer) => {
        proxy.capture?.record(direction, chunk, n);
        return flip ? flip(chunk) : chunk;
      };
    };
    server.on('connection', (client) => {
      const n = ++proxy.counters.connections;
      const target = net.connect({ host: o.target.address, port: o.target.port, allowHalfOpen: true });
      client.setNoDelay(true);
      target.setNoDelay(true);
      proxy.sockets.add(client).add(target);
      const lines = [
        pipeDelayed(client, target, toTargetDelay, up, maxBuffered, (b) => (proxy.counters.bytesToTarget += b), observer(n, 'toTarget', o.corruptToTarget)),
        pipeDelayed(target, client, toClientDelay, down, maxBuffered, (b) => (proxy.counters.bytesToClient += b), observer(n, 'toClient', o.corruptToClient)),
      ];
      const teardown = () => {
        lines.forEach((l) => l.close());
        client.destroy();
        target.destroy();
        proxy.sockets.delete(client);
        proxy.sockets.delete(target);
      };
      // An error (reset) on one side is passed on as an abrupt end of the other; a clean
      // close needs nothing: each FIN travels through its delay line like the data before it.
      client.on('error', teardown).on('close', (hadError) => (hadError ? teardown() : proxy.sockets.delete(client)));
      target.on('error', teardown).on('close', (hadError) => (hadError ? teardown() : proxy.sockets.delete(target)));
      client.resume();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
