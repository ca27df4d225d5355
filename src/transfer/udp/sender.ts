// Owner side of one UDP transfer: paced sending of chunks read from the file in batches, loss
// detection from the ACKs' packet-number ranges (packet and time thresholds) plus a
// retransmission timer, retransmission of exactly the missing chunks under new packet numbers,
// and BBR-like rate control (rate.ts). Memory: a ring of in-flight packets, one byte per chunk
// for "acknowledged", and two read batches (reader.ts) — independent of the file's size otherwise.
import { nowUs } from '../../core/clock';
import type { Connection } from '../../net/connection';
import { FrameType } from '../../wire/frame';
import { AbortReason, encodeAbort, encodeDataHeader, type AckPacket } from '../../wire/transfer';
import { INITIAL_WINDOW_PACKETS, RateControl } from './rate';
import { ChunkReader } from './reader';

const RING = 1 << 16; // packets in flight at most (cwnd is capped well below)
/** A small file gets a small ring: 4 packet numbers per chunk, at least this many. The ring's
 *  five typed arrays take 2.3 MB at full size, allocated (and later collected) per transfer. */
const MIN_RING = 1 << 12;
const TICK_MS = 1;
const MAX_BURST_MS = 2; // pacing tokens never exceed this much sending time
const REORDER_THRESHOLD = 3; // packets, until the path is seen reordering
const TIME_THRESHOLD = 1.25; // x max(srtt, latest rtt); grows by 0.25 per spurious loss up to 2.5
const MAX_TIME_THRESHOLD = 2.5;
/** The most recent packets declared lost are remembered, so a late ACK for one shows reordering. */
const MAX_LATE = 256;
const MIN_RTO_MS = 30;
const MAX_RTO_MS = 2000;
/**
 * Bytes in flight at most, whatever the chunk size: the resume after a killed receiver relies on
 * no hole lying further than this below the end of its partial file (PROTOCOL.md section 7).
 */
const MAX_INFLIGHT_BYTES = 32 * 1024 * 1024;
/** Bytes queued in the socket beyond which the sender waits (the kernel cannot keep up). */
const MAX_SOCKET_QUEUE_BYTES = 1 << 20;
/** After every chunk is acknowledged, how long to wait for DONE before trusting the ACKs. */
const DONE_GRACE_MS = 3000;
const DEBUG = process.env.P2PSHARE_UDP_DEBUG === '1';

export interface SendOptions {
  sessionId: number;
  path: string;
  offset: number;
  size: number;
  chunkBytes: number;
  idleTimeoutMs: number;
}

export interface SendResult {
  bytes: number;
  retransmitted: number;
  seconds: number;
}

export class Sender {
  readonly promise: Promise<SendResult>;
  retransmitted = 0;
  private resolveP!: (r: SendResult) => void;
  private rejectP!: (e: Error) => void;
  private readonly total: number;
  private readonly acked: Uint8Array;
  private ackedCount = 0;
  private cumAcked = 0; // chunks below are all acknowledged
  private window: number; // receiver's flow-control window, chunks
  private nextNew = 0; // next chunk never sent
  private nextPn = 0;
  private lowPn = 0; // every packet below is resolved (acknowledged or declared lost)
  private readonly latePn: number[] = []; // packets declared lost, ascending (from lateHead)
  private readonly lateChunk: number[] = []; // their chunks; -1 once acknowledged late
  private lateHead = 0;
  private reorderSeen = false; // a packet declared lost was acknowledged after all
  private timeThreshold = TIME_THRESHOLD;
  spuriousLosses = 0;
  private largestAcked = -1;
  private inflight = 0;
  // Per packet-number slot: the chunk while in flight, -1 once resolved.
  private readonly ringMask: number;
  private readonly ringChunk: Int32Array;
  // Rate state when each packet was sent (RateControl.snapshot), in typed arrays: no object per packet.
  private readonly ringSentAt: Float64Array;
  private readonly ringDelivered: Float64Array;
  private readonly ringDeliveredAt: Float64Array;
  private readonly ringFirstSentAt: Float64Array;
  private readonly lost: number[] = []; // chunks to retransmit
  private lostHead = 0;
  private readonly rate: RateControl;
  private latestRtt = 0;
  private tokens = 0;
  private lastRefill = performance.now();
  private lastAckAt = performance.now();
  private rtoBackoff = 1;
  private readonly reader: ChunkReader;
  private wake: (() => void) | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private doneTimer: NodeJS.Timeout | undefined;
  private readonly started = performance.now();
  private ended = false;
  private lastDebug = 0;

  constructor(
    private readonly conn: Connection,
    private readonly o: SendOptions,
    private readonly onEnd: () => void,
  ) {
    this.total = Math.ceil((o.size - o.offset) / o.chunkBytes);
    this.acked = new Uint8Array(this.total);
    this.reader = new ChunkReader(o.path, o.offset, o.size, o.chunkBytes, this.total);
    this.window = Math.min(this.total, 256); // until the first ACK says otherwise
    this.rate = new RateControl(o.chunkBytes);
    let ring = MIN_RING;
    while (ring < RING && ring < 4 * this.total) ring *= 2;
    this.ringMask = ring - 1;
    this.ringChunk = new Int32Array(ring).fill(-1);
    this.ringSentAt = new Float64Array(ring);
    this.ringDelivered = new Float64Array(ring);
    this.ringDeliveredAt = new Float64Array(ring);
    this.ringFirstSentAt = new Float64Array(ring);
    // The first flight goes out at once, as TCP's initial window: its ACK brings the first RTT.
    this.tokens = INITIAL_WINDOW_PACKETS * o.chunkBytes;
    this.promise = new Promise((res, rej) => {
      this.resolveP = res;
      this.rejectP = rej;
    });
    this.promise.catch(() => {}); // the caller gets it; never an unhandled rejection here
    if (this.total === 0) {
      setImmediate(() => this.finish());
      return;
    }
    this.armIdle();
    void this.run();
  }

  onAck(a: AckPacket): void {
    if (this.ended) return;
    const top = a.ranges[0].last;
    if (top >= this.nextPn) return; // acknowledges packets never sent: not from our receiver
    const now = performance.now();
    this.armIdle();
    this.window = a.window;
    if (top > this.largestAcked) {
      const rtt = (((nowUs() - a.echoTimeUs) >>> 0) - a.ackDelayUs) / 1000;
      if (rtt > 0 && rtt < 60_000) {
        this.latestRtt = rtt;
        this.rate.onRtt(rtt, now);
      }
      this.largestAcked = top;
    }
    const before = this.ackedCount;
    const cum = Math.min(a.cumulativeChunk, this.total);
    for (; this.cumAcked < cum; this.cumAcked++) this.markAcked(this.cumAcked);
    let newestPn = -1;
    let bytes = 0;
    for (const r of a.ranges) {
      if (r.last < this.lowPn) break; // the rest is older still: already resolved
      for (let pn = Math.max(r.first, this.lowPn); pn <= r.last; pn++) {
        const slot = pn & this.ringMask;
        const chunk = this.ringChunk[slot];
        if (chunk < 0) continue;
        this.ringChunk[slot] = -1;
        this.inflight--;
        bytes += this.chunkLength(chunk);
        this.markAcked(chunk);
        if (pn > newestPn) newestPn = pn;
      }
    }
    if (this.ackedCount > before) {
      this.lastAckAt = now;
      this.rtoBackoff = 1;
    }
    if (newestPn >= 0) {
      const slot = newestPn & this.ringMask;
      const snap = { sentAt: this.ringSentAt[slot], delivered: this.ringDelivered[slot], deliveredAt: this.ringDeliveredAt[slot], firstSentAt: this.ringFirstSentAt[slot] };
      this.rate.onDelivered(bytes, snap, newestPn, this.nextPn, now, this.inflight, this.o.chunkBytes);
    }
    if (this.lateHead < this.latePn.length) this.checkLate(a);
    this.detectLoss(now);
    while (this.cumAcked < this.total && this.acked[this.cumAcked]) this.cumAcked++;
    if (this.ackedCount === this.total) this.allAcked();
    this.wake?.();
  }

  /** The receiver has every byte on disk: done, whatever ACKs are still on their way. */
  onDone(): void {
    this.finish();
  }

  onAbort(reason: string): void {
    this.fail(new Error(`receiver aborted the transfer (${reason})`));
  }

  cancel(message: string): void {
    this.fail(new Error(message), AbortReason.cancelled);
  }

  private markAcked(c: number): void {
    if (this.acked[c]) return;
    this.acked[c] = 1;
    this.ackedCount++;
  }

  /** Packets below the largest acknowledged one by 3, or sent long enough before it, are lost. */
  private detectLoss(now: number): void {
    const delay = this.timeThreshold * Math.max(this.rate.srtt, this.latestRtt) + 1;
    const packetThreshold = this.reorderSeen ? Infinity : REORDER_THRESHOLD;
    let n = 0;
    while (this.lowPn < this.nextPn && this.lowPn < this.largestAcked) {
      const slot = this.lowPn & this.ringMask;
      const chunk = this.ringChunk[slot];
      if (chunk >= 0) {
        const old = now - this.ringSentAt[slot] > delay;
        if (this.largestAcked - this.lowPn < packetThreshold && !old) break;
        this.declareLost(slot, chunk);
        n++;
      }
      this.lowPn++;
    }
    if (n > 0) this.rate.onLoss(n);
  }

  private declareLost(slot: number, chunk: number): void {
    const pn = this.lowPn; // callers walk lowPn upwards: latePn stays ascending
    this.ringChunk[slot] = -1;
    this.inflight--;
    if (!this.acked[chunk]) this.lost.push(chunk);
    this.latePn.push(pn);
    this.lateChunk.push(chunk);
    if (this.latePn.length - this.lateHead > MAX_LATE) this.lateHead++;
    if (this.lateHead > 4 * MAX_LATE) {
      this.latePn.splice(0, this.lateHead);
      this.lateChunk.splice(0, this.lateHead);
      this.lateHead = 0;
    }
  }

  /** Merges the remembered lost packets (ascending) with the ACK's ranges (descending). */
  private checkLate(a: AckPacket): void {
    let r = a.ranges.length - 1; // lowest range first
    for (let i = this.lateHead; i < this.latePn.length && r >= 0; i++) {
      const pn = this.latePn[i];
      while (r >= 0 && a.ranges[r].last < pn) r--;
      if (r < 0) break;
      if (pn >= a.ranges[r].first && this.lateChunk[i] >= 0) {
        // A packet declared lost arrived after all: the path reorders. Rely on time, wait longer.
        this.markAcked(this.lateChunk[i]); // its retransmission, if not sent yet, is skipped
        this.lateChunk[i] = -1;
        this.spuriousLosses++;
        this.reorderSeen = true;
        this.timeThreshold = Math.min(MAX_TIME_THRESHOLD, this.timeThreshold + 0.25);
      }
    }
  }

  private rtoMs(): number {
    const base = Math.max(MIN_RTO_MS, this.rate.srtt + 4 * this.rate.rttvar + 5);
    return Math.min(MAX_RTO_MS, base * this.rtoBackoff);
  }

  /** No acknowledgement for a whole RTO: everything in flight is presumed lost. */
  private checkRto(now: number): void {
    if (this.inflight === 0 || now - this.lastAckAt < this.rtoMs()) return;
    for (; this.lowPn < this.nextPn; this.lowPn++) {
      const slot = this.lowPn & this.ringMask;
      if (this.ringChunk[slot] >= 0) this.declareLost(slot, this.ringChunk[slot]);
    }
    this.rtoBackoff = Math.min(this.rtoBackoff * 2, 64);
    this.lastAckAt = now;
    this.rate.onTimeout();
  }

  private async run(): Promise<void> {
    try {
      await this.reader.open();
      while (!this.ended) {
        const now = performance.now();
        this.checkRto(now);
        if (this.lostHead > 4096) {
          this.lost.splice(0, this.lostHead);
          this.lostHead = 0;
        }
        const budget = this.sendBudget(now);
        if (budget > 0 && (await this.sendSome(budget)) > 0) {
          // Yield to the event loop now and then so ACKs are read while sending.
          await new Promise<void>((r) => setImmediate(r));
          continue;
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            this.wake = undefined;
            resolve();
          }, TICK_MS);
          this.wake = () => {
            clearTimeout(t);
            this.wake = undefined;
            resolve();
          };
        });
      }
    } catch (err) {
      this.fail(new Error(`cannot read ${this.o.path}: ${(err as Error).message}`), AbortReason.ioError);
    } finally {
      await this.reader.close();
    }
  }

  /** Packets that pacing, the congestion window and the receiver's window allow now. */
  private sendBudget(now: number): number {
    const bytesPerMs = this.rate.pacingRate() / 1000;
    const pkt = this.o.chunkBytes;
    const cap = Math.max(4 * pkt, bytesPerMs * MAX_BURST_MS);
    // Tokens above the cap (the initial window) are kept until spent, but not added to.
    if (this.tokens < cap) this.tokens = Math.min(cap, this.tokens + bytesPerMs * (now - this.lastRefill));
    this.lastRefill = now;
    if (this.conn.queuedBytes() > MAX_SOCKET_QUEUE_BYTES) return 0;
    if (DEBUG && now - this.lastDebug > 200) {
      this.lastDebug = now;
      console.error(`udp-send ${this.o.sessionId} rate=${(this.rate.pacingRate() / 1e6).toFixed(2)}MB/s bw=${(this.rate.btlBw() / 1e6).toFixed(2)} minRtt=${this.rate.minRtt.toFixed(2)} srtt=${this.rate.srtt.toFixed(2)} cwnd=${this.rate.cwndPackets(pkt)} inflight=${this.inflight} win=${this.window} acked=${this.ackedCount}/${this.total} retx=${this.retransmitted} startup=${this.rate.inStartup}`);
    }
    const byPacing = Math.floor(this.tokens / pkt);
    const byCwnd = this.rate.cwndPackets(pkt) - this.inflight;
    const byWindow = Math.max(this.window, 1) - this.inflight;
    const byBytes = Math.floor(MAX_INFLIGHT_BYTES / pkt) - this.inflight;
    return Math.min(byPacing, byCwnd, byBytes, Math.max(byWindow, this.inflight === 0 ? 1 : 0), (this.ringMask + 1) / 2 - (this.nextPn - this.lowPn));
  }

  private async sendSome(budget: number): Promise<number> {
    let sent = 0;
    // Retransmissions first: from the current batch, or read on their own.
    while (sent < budget && this.lostHead < this.lost.length) {
      const c = this.lost[this.lostHead++];
      if (this.acked[c]) continue;
      const buf = await this.reader.chunk(c);
      if (this.ended) return sent;
      if (this.acked[c]) continue;
      this.transmit(c, buf);
      this.retransmitted++;
      sent++;
    }
    // New chunks from the current read batch; the next batch is read meanwhile.
    while (sent < budget && this.nextNew < this.total) {
      const b = await this.reader.batchFor(this.nextNew);
      if (this.ended) return sent;
      const end = Math.min(b.first + b.count, this.nextNew + (budget - sent));
      for (; this.nextNew < end; this.nextNew++, sent++) this.transmit(this.nextNew, b.get(this.nextNew));
    }
    this.tokens -= sent * this.o.chunkBytes;
    return sent;
  }

  private chunkLength(c: number): number {
    return this.reader.chunkLength(c);
  }

  private transmit(chunk: number, payload: Buffer): void {
    if (this.nextPn >= 0xffffffff) throw new Error('too many packets for one session');
    const pn = this.nextPn++;
    const slot = pn & this.ringMask;
    const now = performance.now();
    this.rate.onSend(now, this.inflight);
    this.ringChunk[slot] = chunk;
    this.ringSentAt[slot] = now;
    this.ringDelivered[slot] = this.rate.delivered;
    this.ringDeliveredAt[slot] = this.rate.deliveredAt;
    this.ringFirstSentAt[slot] = this.rate.firstSentAt;
    this.inflight++;
    // Header and payload go as two parts: the frame encoder copies the payload once.
    this.conn.send(FrameType.data, this.o.sessionId, encodeDataHeader({ packetNumber: pn, chunk, sendTimeUs: nowUs() }), payload);
  }

  private allAcked(): void {
    if (this.doneTimer) return;
    this.doneTimer = setTimeout(() => this.finish(), Math.min(DONE_GRACE_MS, this.o.idleTimeoutMs));
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      const secs = this.o.idleTimeoutMs / 1000;
      this.fail(new Error(`no acknowledgement from peer for ${secs} s (idle timeout)`), AbortReason.timeout);
    }, this.o.idleTimeoutMs);
  }

  private stop(): void {
    this.ended = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.doneTimer) clearTimeout(this.doneTimer);
    this.wake?.();
    this.onEnd();
  }

  private finish(): void {
    if (this.ended) return;
    this.stop();
    this.resolveP({
      bytes: this.o.size - this.o.offset,
      retransmitted: this.retransmitted,
      seconds: (performance.now() - this.started) / 1000,
    });
  }

  private fail(err: Error, abortReason?: number): void {
    if (this.ended) return;
    this.stop();
    if (abortReason !== undefined) {
      this.conn.send(FrameType.abort, this.o.sessionId, encodeAbort(abortReason));
    }
    this.rejectP(err);
  }
}
