// The transfer's clock for RTT samples carried in DATA and echoed in ACK (PROTOCOL.md 6.2, 6.3).

/** Microseconds since an arbitrary origin, mod 2^32 (wraps every ~71 minutes; only differences matter). */
export function nowUs(): number {
  return Math.floor(performance.now() * 1000) >>> 0;
}
