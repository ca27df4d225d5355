// Anti-replay sliding window for SEALED frame counters, as RFC 6479: a ring of 32-bit words
// one word larger than the window, so sliding forward clears whole words and never shifts bits.
// Accepts a counter iff it is above highest - WINDOW and not seen before.

export const REPLAY_WINDOW = 8192;

const WORD_BITS = 32;

export class ReplayWindow {
  private readonly bits: Uint32Array;
  private readonly words: number;
  private top = -1;

  /** `size`: how far below the highest a counter is still accepted (a multiple of 32). */
  constructor(private readonly size = REPLAY_WINDOW) {
    this.words = Math.ceil(size / WORD_BITS) + 1;
    this.bits = new Uint32Array(this.words);
  }

  /** The highest counter accepted so far (-1 before the first). */
  get highest(): number {
    return this.top;
  }

  /** Would `counter` be accepted? Changes nothing: call before authenticating the frame. */
  check(counter: number): boolean {
    if (!Number.isSafeInteger(counter) || counter < 0) return false;
    if (counter > this.top) return true;
    if (this.top - counter >= this.size) return false;
    return (this.bits[this.word(counter)]! & this.mask(counter)) === 0;
  }

  /** Marks `counter` seen, only after the frame authenticated. False (and no change) if check() would refuse it. */
  accept(counter: number): boolean {
    if (!this.check(counter)) return false;
    if (counter > this.top) {
      const from = this.top < 0 ? 0 : Math.floor(this.top / WORD_BITS) + 1;
      const to = Math.floor(counter / WORD_BITS);
      if (this.top < 0 || to - from >= this.words) this.bits.fill(0);
      else for (let w = from; w <= to; w++) this.bits[w % this.words] = 0;
      this.top = counter;
    }
    this.bits[this.word(counter)]! |= this.mask(counter);
    return true;
  }

  private word(counter: number): number {
    return Math.floor(counter / WORD_BITS) % this.words;
  }

  private mask(counter: number): number {
    return 1 << counter % WORD_BITS;
  }
}
