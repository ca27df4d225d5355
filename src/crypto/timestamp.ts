// The TAI64N timestamp that is msg1's payload, and the responder's rule against a replayed msg1
// (WireGuard's idea, widened so that several processes sharing one identity, whose clocks and
// sends interleave, are not refused): per initiator static key, accept iff the timestamp is
// above max - 10 s and was not seen before.

export const TIMESTAMP_BYTES = 12;
export const TIMESTAMP_WINDOW_NS = 10_000_000_000n;
export const MAX_RECENT_TIMESTAMPS = 32;
export const MAX_INITIATOR_KEYS = 65_536;

/** TAI64N label of the unix epoch: 2^62 (the label is 2^62 + unix seconds, no leap-second offset). */
const TAI_EPOCH = 2n ** 62n;
const NS_PER_S = 1_000_000_000n;

/** 12 bytes: u64 2^62 + unix seconds, u32 nanoseconds (both big-endian). */
export function encodeTai64n(unixNs: bigint): Buffer {
  if (unixNs < 0n) throw new RangeError('a timestamp before 1970');
  const out = Buffer.alloc(TIMESTAMP_BYTES);
  out.writeBigUInt64BE(TAI_EPOCH + unixNs / NS_PER_S, 0);
  out.writeUInt32BE(Number(unixNs % NS_PER_S), 8);
  return out;
}

/** Unix time in nanoseconds, or null when the bytes are not a TAI64N timestamp after 1970. */
export function decodeTai64n(bytes: Uint8Array): bigint | null {
  if (bytes.length !== TIMESTAMP_BYTES) return null;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const label = b.readBigUInt64BE(0);
  const ns = b.readUInt32BE(8);
  if (label < TAI_EPOCH || ns >= 1_000_000_000) return null;
  return (label - TAI_EPOCH) * NS_PER_S + BigInt(ns);
}

/** Timestamps from a wall clock, strictly increasing even when the clock stalls or steps back. */
export class TimestampClock {
  private last = -1n;

  constructor(private readonly nowNs: () => bigint = () => BigInt(Date.now()) * 1_000_000n) {}

  next(): Buffer {
    const now = this.nowNs();
    this.last = now > this.last ? now : this.last + 1n;
    return encodeTai64n(this.last);
  }
}

const processClock = new TimestampClock();

/** The next timestamp of this process. */
export function timestamp(): Buffer {
  return processClock.next();
}

interface Seen {
  max: bigint;
  /** A timestamp at or below max - floorBelow (ns) is refused: the window, or one pushed out of `below`. */
  floorBelow: number;
  /** max - t (ns, below the 10 s window) for each accepted t under max, at most 32. */
  below: number[];
}

const WINDOW_NS = Number(TIMESTAMP_WINDOW_NS);

/**
 * The responder's memory of initiators' timestamps, a bounded LRU of static keys. A key pushed
 * out is forgotten, so its old msg1 would be accepted once more: the bound trades that for
 * memory (measured: 38 MB for 65,536 keys with 32 recent timestamps each, the worst case).
 */
export class TimestampReplayGuard {
  private readonly seen = new Map<string, Seen>();

  constructor(private readonly maxKeys = MAX_INITIATOR_KEYS) {}

  get size(): number {
    return this.seen.size;
  }

  /** Accepts and records `timestamp` for the key. Call only once msg1 has authenticated. */
  accept(initiatorStatic: Uint8Array, timestamp: Uint8Array): boolean {
    const ts = decodeTai64n(timestamp);
    if (ts === null) return false;
    const id = Buffer.from(initiatorStatic).toString('latin1');
    const entry = this.seen.get(id);
    if (!entry) {
      this.seen.set(id, { max: ts, floorBelow: WINDOW_NS, below: [] });
      if (this.seen.size > this.maxKeys) this.seen.delete(this.seen.keys().next().value!);
      return true;
    }
    this.seen.delete(id); // most recently used last
    this.seen.set(id, entry);
    if (ts > entry.max) {
      const up = ts - entry.max >= TIMESTAMP_WINDOW_NS ? WINDOW_NS : Number(ts - entry.max);
      entry.below = [0, ...entry.below].map((d) => d + up).filter((d) => d < WINDOW_NS);
      entry.floorBelow = Math.min(WINDOW_NS, entry.floorBelow + up);
      entry.max = ts;
    } else {
      const down = entry.max - ts >= TIMESTAMP_WINDOW_NS ? WINDOW_NS : Number(entry.max - ts);
      if (down === 0 || down >= entry.floorBelow || entry.below.includes(down)) return false;
      entry.below.push(down);
    }
    if (entry.below.length > MAX_RECENT_TIMESTAMPS) {
      const oldest = Math.max(...entry.below);
      entry.below.splice(entry.below.indexOf(oldest), 1);
      entry.floorBelow = Math.min(entry.floorBelow, oldest);
    }
    return true;
  }
}
