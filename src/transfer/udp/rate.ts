// BBR-like rate control for one sender. The pacing rate follows a model of the path, the
// bottleneck bandwidth (max-filtered delivery rate over 10 rounds) and the minimum RTT, instead
// of reacting to each loss: random loss barely moves the delivery rate, so it does not slow the
// transfer (loss-based control would halve on every loss). A full queue shows up as a delivery
// rate that stops growing and an RTT above the minimum; heavy loss or a swollen RTT in a round
// also scales the model down. Pure arithmetic: the sender gives it times and counts.
const STARTUP_GAIN = 2.89; // 2/ln 2: doubles the delivery rate every round while it grows
const DRAIN_GAIN = 1 / STARTUP_GAIN;
const CRUISE_GAINS = [1.25, 0.75, 1, 1, 1, 1, 1, 1];
const CWND_GAIN = 2;
const FILTER_ROUNDS = 10;
const INITIAL_RATE = 4_000_000; // bytes/s until the first delivery samples
/** As TCP's and QUIC's initial window: in startup the pacing rate is at least this many packets
 *  per minimum RTT (times the startup gain), as BBR's pacing rate initialised from the RTT. */
export const INITIAL_WINDOW_PACKETS = 10;
const MIN_RATE = 256_000;
const MIN_CWND_PACKETS = 256;
/** Added to the minimum RTT for the window: ACK delay, timer ticks and event-loop turns on both
 *  sides, which on fast paths dwarf the wire RTT. Costs at most 10 ms of extra queue. */
const CWND_RTT_ALLOWANCE_MS = 10;
const MAX_CWND_PACKETS = 32768;
const BACKOFF = 0.85;
/** Share of a round's packets lost that counts as congestion, not random loss. */
const HEAVY_LOSS = 0.3;
/** RTT inflation only counts beyond this absolute margin (timers and event-loop jitter). */
const RTT_INFLATION_MARGIN_MS = 15;
/** Startup ends early when a round's smallest RTT exceeds the minimum by this factor and margin
 *  (a queue is forming: HyStart's signal), or when a round loses more than STARTUP_LOSS. */
const STARTUP_RTT_FACTOR = 1.25;
const STARTUP_RTT_MARGIN_MS = 10; // as the window allowance: event-loop delay is not a queue
const STARTUP_LOSS = 0.1;
/** The minimum RTT is forgotten after this long so a changed path is re-measured. */
const MIN_RTT_WINDOW_MS = 10_000;

/** What the sender remembers of the rate state when it sends a packet. */
export interface SendSnapshot {
  delivered: number;
  deliveredAt: number;
  firstSentAt: number;
  sentAt: number;
}

export class RateControl {
  srtt = 100; // ms, until measured
  rttvar = 50;
  minRtt = Infinity;
  private minRttAt = 0;
  private hasRtt = false;
  // Read by the sender when it sends a packet (see snapshot); written only here.
  delivered = 0; // bytes acknowledged so far
  deliveredAt = performance.now();
  firstSentAt = performance.now();
  private mode: 'startup' | 'drain' | 'cruise' = 'startup';
  private roundMaxes: number[] = [];
  private roundMax = 0;
  private roundEndPn = 0;
  private roundAcked = 0;
  private roundLost = 0;
  private roundMinRtt = Infinity;
  private cycle = 0;
  private fullBw = 0;
  private fullBwRounds = 0;

  constructor(private readonly packetBytes = 1200) {}

  /**
   * A packet is about to be sent while `inflight` packets are in flight. A sender with nothing in
   * flight starts its delivery-rate intervals now (as BBR does), so the time before its first
   * send (file open, first read) or an idle pause does not dilute the next samples.
   */
  onSend(now: number, inflight: number): void {
    if (inflight > 0) return;
    this.deliveredAt = now;
    this.firstSentAt = now;
  }

  snapshot(now: number): SendSnapshot {
    return { delivered: this.delivered, deliveredAt: this.deliveredAt, firstSentAt: this.firstSentAt, sentAt: now };
  }

  onRtt(ms: number, now: number): void {
    const sample = Math.max(ms, 0.01);
    if (!this.hasRtt) {
      this.srtt = sample;
      this.rttvar = sample / 2;
      this.hasRtt = true;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - sample);
      this.srtt = 0.875 * this.srtt + 0.125 * sample;
    }
    if (sample < this.roundMinRtt) this.roundMinRtt = sample;
    if (sample <= this.minRtt || now - this.minRttAt > MIN_RTT_WINDOW_MS) {
      this.minRtt = sample;
      this.minRttAt = now;
    }
  }

  /**
   * `bytes` newly delivered by one ACK; `s` is the snapshot of the newest packet it acknowledged
   * (packet number `pn`; `nextPn` is the next one to be sent). Gives one delivery-rate sample.
   */
  onDelivered(bytes: number, s: SendSnapshot, pn: number, nextPn: number, now: number, inflight: number, packetBytes: number): void {
    this.delivered += bytes;
    this.deliveredAt = now;
    this.firstSentAt = s.sentAt;
    this.roundAcked += Math.ceil(bytes / packetBytes);
    // As in BBR: the longer of the send and the ack interval, so ACK compression cannot inflate it.
    const interval = Math.max(s.sentAt - s.firstSentAt, now - s.deliveredAt);
    if (interval > 0) {
      const rate = ((this.delivered - s.delivered) * 1000) / interval;
      if (rate > this.roundMax) this.roundMax = rate;
    }
    if (this.mode === 'drain' && inflight <= this.bdpPackets(packetBytes)) this.mode = 'cruise';
    if (pn >= this.roundEndPn) this.endRound(nextPn);
  }

  onLoss(n: number): void {
    this.roundLost += n;
  }

  /** No acknowledgement for a whole retransmission timeout: halve the model. */
  onTimeout(): void {
    this.scaleBw(0.5);
    if (this.mode === 'startup') this.mode = 'cruise';
  }

  private endRound(nextPn: number): void {
    this.roundEndPn = nextPn;
    this.roundMaxes.push(this.roundMax);
    if (this.roundMaxes.length > FILTER_ROUNDS) this.roundMaxes.shift();
    this.roundMax = 0;
    const total = this.roundAcked + this.roundLost;
    const heavyLoss = total >= 20 && this.roundLost / total > HEAVY_LOSS;
    // A standing queue: even the round's smallest RTT is twice the path's (our own 2 x BDP window
    // alone cannot do that), so someone else's traffic or an overshoot fills the bottleneck.
    const inflated = Number.isFinite(this.roundMinRtt) && this.roundMinRtt > 2 * this.minRtt && this.roundMinRtt > this.minRtt + RTT_INFLATION_MARGIN_MS;
    const queueing = this.roundMinRtt > this.minRtt * STARTUP_RTT_FACTOR + STARTUP_RTT_MARGIN_MS && Number.isFinite(this.roundMinRtt);
    const startupLoss = total >= 20 && this.roundLost / total > STARTUP_LOSS;
    this.roundAcked = this.roundLost = 0;
    this.roundMinRtt = Infinity;
    const bw = this.btlBw();
    if (this.mode === 'startup') {
      // Startup ends when the bandwidth estimate stops growing by 25 % for 3 rounds, or early
      // when the path starts queueing or losing.
      if (queueing || startupLoss) {
        this.mode = 'drain';
      } else if (bw > this.fullBw * 1.25) {
        this.fullBw = bw;
        this.fullBwRounds = 0;
      } else if (++this.fullBwRounds >= 3) {
        this.mode = 'drain';
      }
    } else {
      this.cycle = (this.cycle + 1) % CRUISE_GAINS.length;
      if (this.mode === 'drain') this.mode = 'cruise'; // at most one round of draining
    }
    if (this.mode !== 'startup' && (heavyLoss || inflated)) this.scaleBw(BACKOFF);
  }

  private scaleBw(f: number): void {
    this.roundMaxes = this.roundMaxes.map((r) => r * f);
    this.roundMax *= f;
  }

  /** Bottleneck bandwidth estimate, bytes/s (0 before any sample). */
  btlBw(): number {
    let m = this.roundMax;
    for (const r of this.roundMaxes) if (r > m) m = r;
    return m;
  }

  get inStartup(): boolean {
    return this.mode === 'startup';
  }

  /** Bytes per second to pace at. */
  pacingRate(): number {
    const bw = this.btlBw();
    if (bw === 0) return INITIAL_RATE;
    if (this.mode === 'startup') {
      // The first samples only measure what the initial rate let through: never pace below an
      // initial window per RTT while the delivery rate is still being discovered.
      const byRtt = Number.isFinite(this.minRtt) ? (INITIAL_WINDOW_PACKETS * this.packetBytes * 1000) / this.minRtt : 0;
      return Math.max(MIN_RATE, STARTUP_GAIN * Math.max(bw, byRtt));
    }
    const gain = this.mode === 'drain' ? DRAIN_GAIN : CRUISE_GAINS[this.cycle];
    return Math.max(MIN_RATE, bw * gain);
  }

  private bdpPackets(packetBytes: number, allowance = 0): number {
    const rtt = (Number.isFinite(this.minRtt) ? this.minRtt : this.srtt) + allowance;
    return (this.btlBw() * rtt) / 1000 / packetBytes;
  }

  /** Packets allowed in flight: 2 x BDP (2.89 x in startup), within a floor and a ceiling. */
  cwndPackets(packetBytes: number): number {
    const gain = this.mode === 'startup' ? STARTUP_GAIN : CWND_GAIN;
    const c = Math.ceil(gain * this.bdpPackets(packetBytes, CWND_RTT_ALLOWANCE_MS));
    return Math.max(MIN_CWND_PACKETS, Math.min(MAX_CWND_PACKETS, c));
  }
}
