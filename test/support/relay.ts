// A UDP impairment relay for tests and benchmarks (netem does not exist in this kernel).
// It sits between clients and one target and, per direction, drops, duplicates, reorders,
// corrupts, delays (with jitter) and rate-limits datagrams through a drop-tail queue, counting
// everything it did so a test can prove the impairment really happened.
//
// Per datagram, in this order: loss -> corruption (1-3 distinct bits of a copy) -> duplication
// (the copy follows right behind the original) -> rate limiter (drop-tail queue, serialisation at
// `rateMbit`) -> one-way delay +- jitter (jitter never reorders) -> reordering (hold this datagram
// back by `reorderDelayMs` so later ones overtake it).
//
// Timing uses one timer per relay and a time-ordered queue, not one setTimeout per datagram,
// so the relay keeps up with loopback packet rates.
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { seededRandom } from './random';

export interface Impairment {
  lossPercent?: number;
  duplicatePercent?: number;
  reorderPercent?: number;
  reorderDelayMs?: number;
  corruptPercent?: number;
  delayMs?: number;
  jitterMs?: number;
  rateMbit?: number;
  queueBytes?: number;
  /**
   * The emulated path's IP MTU (default 1500): a datagram that would not fit it (over mtu - 28
   * bytes of UDP payload) is dropped, as a router drops a packet it may not fragment, and counted.
   * The relay sits on loopback, but what it emulates is a network path.
   */
  mtu?: number;
  seed?: number;
}

export interface RelayCounters {
  received: number;
  forwarded: number;
  lost: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
  queueDrops: number;
  /** Dropped for exceeding the emulated path's MTU. */
  tooBig: number;
  bytesForwarded: number;
}

export interface Address {
  address: string;
  port: number;
}

const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

export function emptyCounters(): RelayCounters {
  return { received: 0, forwarded: 0, lost: 0, duplicated: 0, reordered: 0, corrupted: 0, queueDrops: 0, tooBig: 0, bytesForwarded: 0 };
}

interface Scheduled<T> {
  at: number;
  seq: number;
  item: T;
}

/**
 * Items released at a given time (performance.now() milliseconds), in time order (ties in
 * insertion order), driven by a single timer. A binary min-heap: inserts in time order (the usual
 * case) cost O(1), so it stays cheap at high packet rates.
 */
export class TimedQueue<T> {
  private readonly heap: Scheduled<T>[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closed = false;

  constructor(private readonly release: (item: T) => void) {}

  get size(): number {
    return this.heap.length;
  }

  push(at: number, item: T): void {
    if (this.closed) return;
    const heap = this.heap;
    heap.push({ at, seq: this.seq++, item });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
    if (i === 0) this.arm();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.heap.length = 0;
  }

  private arm(): void {
    const first = this.heap[0];
    if (!first || this.closed) return;
    if (this.timer && this.timerAt <= first.at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = first.at;
    // Never early: flush() re-arms for whatever is not due yet.
    this.timer = setTimeout(() => this.flush(), Math.max(0, Math.ceil(first.at - performance.now())));
  }

  private flush(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    while (!this.closed && this.heap.length > 0 && this.heap[0]!.at <= now) this.release(this.pop().item);
    this.arm();
  }

  private pop(): Scheduled<T> {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Scheduled<unknown>, b: Scheduled<unknown>): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

interface Outgoing {
  data: Buffer;
  socket: dgram.Socket;
  to: Address;
}

/**
 * One direction of the relay: decides the fate of each datagram and hands it to `send` now or
 * through the time queue. Pure decisions plus one queue; the sockets live in UdpRelay.
 */
export class ImpairedLink {
  readonly counters = emptyCounters();
  private readonly random: () => number;
  private readonly queue: TimedQueue<Outgoing>;
  private readonly direct: boolean;
  private readonly bytesPerMs: number;
  private readonly queueLimit: number;
  private linkFreeAt = 0; // when the rate limiter finishes serialising what it already holds
  private lastInOrderAt = 0; // floor for delay + jitter, so jitter never reorders

  constructor(private readonly imp: Impairment = {}) {
    this.random = seededRandom(imp.seed ?? 0x5eed);
    this.queue = new TimedQueue((o) => this.transmit(o));
    this.bytesPerMs = imp.rateMbit && imp.rateMbit > 0 ? (imp.rateMbit * 1e6) / 8 / 1000 : 0;
    const bdp = this.bytesPerMs * 2 * (imp.delayMs ?? 0);
    this.queueLimit = imp.queueBytes ?? Math.max(256 * 1024, Math.ceil(1.5 * bdp));
    this.direct = !this.bytesPerMs && !imp.delayMs && !imp.jitterMs && !imp.reorderPercent;
  }

  /** Applies the impairments to one datagram arriving now; `socket` sends it on to `to`. */
  accept(data: Buffer, socket: dgram.Socket, to: Address): void {
    const c = this.counters;
    const imp = this.imp;
    c.received++;
    if (data.length > (imp.mtu ?? 1500) - 28) {
      c.tooBig++;
      return;
    }
    if (this.chance(imp.lossPercent)) {
      c.lost++;
      return;
    }
    let out = data;
    if (this.chance(imp.corruptPercent) && data.length > 0) {
      out = this.corrupt(data);
      c.corrupted++;
    }
    const copies = this.chance(imp.duplicatePercent) ? 2 : 1;
    if (copies === 2) c.duplicated++;
    for (let i = 0; i < copies; i++) this.route({ data: out, socket, to });
  }

  close(): void {
    this.queue.close();
  }

  /** Datagrams waiting in the rate limiter or the delay line. */
  get pending(): number {
    return this.queue.size;
  }

  private route(o: Outgoing): void {
    if (this.direct) {
      this.transmit(o);
      return;
    }
    const imp = this.imp;
    const now = performance.now();
    let at = now;
    if (this.bytesPerMs) {
      const backlogBytes = Math.max(0, this.linkFreeAt - now) * this.bytesPerMs;
      if (backlogBytes + o.data.length > this.queueLimit) {
        this.counters.queueDrops++;
        return;
      }
      this.linkFreeAt = Math.max(now, this.linkFreeAt) + o.data.length / this.bytesPerMs;
      at = this.linkFreeAt;
    }
    at += imp.delayMs ?? 0;
    if (imp.jitterMs) at += (this.random() * 2 - 1) * imp.jitterMs;
    at = Math.max(at, this.lastInOrderAt, now);
    this.lastInOrderAt = at;
    if (this.chance(imp.reorderPercent)) {
      this.counters.reordered++;
      at += imp.reorderDelayMs ?? 5;
    }
    this.queue.push(at, o);
  }

  private transmit(o: Outgoing): void {
    this.counters.forwarded++;
    this.counters.bytesForwarded += o.data.length;
    o.socket.send(o.data, o.to.port, o.to.address, () => {});
  }

  private chance(percent: number | undefined): boolean {
    return !!percent && this.random() * 100 < percent;
  }

  /** A copy of `data` with 1-3 distinct bits flipped, so it always differs from the original. */
  private corrupt(data: Buffer): Buffer {
    const copy = Buffer.from(data);
    const bits = data.length * 8;
    const flips = Math.min(bits, 1 + Math.floor(this.random() * 3));
    const chosen = new Set<number>();
    while (chosen.size < flips) chosen.add(Math.floor(this.random() * bits));
    for (const bit of chosen) copy[bit >> 3]! ^= 1 << (bit & 7);
    return copy;
  }
}

async function bindUdp(port: number, host: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  // Sends to a closed port may report errors asynchronously: a relay never dies of them.
  socket.on('error', () => {});
  return socket;
}

const MAX_MAPPINGS = 4096;

/** One client's NAT-like mapping: its upstream socket, and what it sent while that was binding. */
interface Mapping {
  socket?: dgram.Socket;
  early: Buffer[];
}

export class UdpRelay {
  readonly counters: { toTarget: RelayCounters; toClient: RelayCounters };
  private readonly upstream = new Map<string, Mapping>();
  private readonly opening: Promise<void>[] = [];
  private closed = false;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly target: Address,
    private readonly toTarget: ImpairedLink,
    private readonly toClient: ImpairedLink,
  ) {
    this.counters = { toTarget: toTarget.counters, toClient: toClient.counters };
    socket.on('message', (msg, rinfo) => this.fromClient(msg, { address: rinfo.address, port: rinfo.port }));
  }

  /**
   * Listens on 127.0.0.1:`port` (0 = free). For every client address that sends to it, the relay
   * opens one upstream socket towards `target` (like a NAT mapping) and relays the replies back.
   * `toTarget` impairs client->target datagrams, `toClient` the replies (either may be omitted).
   */
  static async start(o: { target: Address; port?: number; toTarget?: Impairment; toClient?: Impairment }): Promise<UdpRelay> {
    const socket = await bindUdp(o.port ?? 0, '127.0.0.1');
    // Distinct default seeds, so the two directions do not make the same choices in lockstep.
    const toClient = { seed: 0xc11e47, ...o.toClient };
    return new UdpRelay(socket, o.target, new ImpairedLink(o.toTarget), new ImpairedLink(toClient));
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Number of client mappings (upstream sockets) opened so far. */
  get mappings(): number {
    return this.upstream.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.toTarget.close();
    this.toClient.close();
    await Promise.allSettled(this.opening);
    const sockets = [this.socket, ...[...this.upstream.values()].flatMap((m) => (m.socket ? [m.socket] : []))];
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  private fromClient(msg: Buffer, client: Address): void {
    if (this.closed) return;
    const key = `${client.address}:${client.port}`;
    const mapping = this.upstream.get(key);
    if (mapping?.socket) {
      this.toTarget.accept(msg, mapping.socket, this.target);
    } else if (mapping) {
      if (mapping.early.length < 1024) mapping.early.push(msg);
    } else if (this.upstream.size < MAX_MAPPINGS) {
      const fresh: Mapping = { early: [msg] };
      this.upstream.set(key, fresh);
      this.opening.push(this.openUpstream(fresh, client));
    }
  }

  private async openUpstream(mapping: Mapping, client: Address): Promise<void> {
    const s = await bindUdp(0, '127.0.0.1');
    s.on('message', (msg, rinfo) => {
      if (this.closed || rinfo.port !== this.target.port) return;
      this.toClient.accept(msg, this.socket, client);
    });
    mapping.socket = s;
    if (this.closed) return;
    for (const msg of mapping.early) this.toTarget.accept(msg, s, this.target);
    mapping.early = [];
  }
}
