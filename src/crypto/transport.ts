// One direction of a session's SEALED frames: ChaCha20-Poly1305 keyed by the handshake's Split()
// with an EXPLICIT counter (datagrams arrive out of order, so Noise's implicit nonce will not
// do; the nonce encoding stays Noise's). Every `rekeyInterval` counters the key moves one epoch:
// K_{e+1} = Noise Rekey(K_e), the key for counter n being K_floor(n / interval). Pair with a
// ReplayWindow: check() before open(), accept() after it authenticates.
import { aeadOpen, aeadOpenPieces, aeadSeal, aeadSealDetached, KEY_BYTES, NONCE_BYTES, rekey, writeNonce } from './primitives';

export const DEFAULT_REKEY_INTERVAL = 2 ** 24;
/** Counters stop below 2^48: the connection is closed before. */
export const COUNTER_LIMIT = 2 ** 48;
/**
 * The opener derives at most this many epochs ahead (2^28 lost frames in a row at the default
 * interval); the keys derived ahead are kept, so forged frames cannot make it derive twice.
 */
const MAX_EPOCHS_AHEAD = 16;

function checkKey(key: Uint8Array): Buffer {
  if (key.length !== KEY_BYTES) throw new RangeError('a transport key is 32 bytes');
  return Buffer.from(key);
}

function checkInterval(interval: number): number {
  if (!Number.isSafeInteger(interval) || interval < 1) throw new RangeError('the rekey interval is a positive integer');
  return interval;
}

function isCounter(counter: number): boolean {
  return Number.isSafeInteger(counter) && counter >= 0 && counter < COUNTER_LIMIT;
}

export class Sealer {
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private readonly interval: number;
  private key: Buffer;
  private epoch = 0;
  /** The lowest counter still unused: a counter is never sealed twice (nonce reuse). */
  private next = 0;

  constructor(key: Uint8Array, rekeyInterval = DEFAULT_REKEY_INTERVAL) {
    this.key = checkKey(key);
    this.interval = checkInterval(rekeyInterval);
  }

  /** ciphertext || tag of the concatenated parts. Counters must strictly increase. */
  seal(counter: number, ad: Uint8Array, ...plaintextParts: Uint8Array[]): Buffer {
    return aeadSeal(this.keyFor(counter), writeNonce(this.nonce, counter), ad, plaintextParts);
  }

  /** The same sealing, ciphertext and tag apart (a TCP record writes them without joining them). */
  sealDetached(counter: number, ad: Uint8Array, plaintext: Uint8Array): [ciphertext: Buffer, tag: Buffer] {
    return aeadSealDetached(this.keyFor(counter), writeNonce(this.nonce, counter), ad, plaintext);
  }

  /** The key for `counter`, which must be above every counter sealed so far (a nonce is never reused). */
  private keyFor(counter: number): Buffer {
    if (!isCounter(counter)) throw new RangeError(`cannot seal counter ${counter}: outside 0..2^48-1`);
    if (counter < this.next) throw new RangeError(`cannot seal counter ${counter} again (next is ${this.next})`);
    const epoch = Math.floor(counter / this.interval);
    for (; this.epoch < epoch; this.epoch++) this.key = rekey(this.key);
    this.next = counter + 1;
    return this.key;
  }
}

export class Opener {
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private readonly interval: number;
  private epoch = 0;
  private key: Buffer;
  private previous: Buffer | undefined;
  /** ahead[i] is the key of epoch `epoch + 1 + i`, derived on demand. */
  private ahead: Buffer[] = [];

  constructor(key: Uint8Array, rekeyInterval = DEFAULT_REKEY_INTERVAL) {
    this.key = checkKey(key);
    this.interval = checkInterval(rekeyInterval);
  }

  /**
   * The plaintext, or null when the frame does not authenticate or its epoch's key is gone (older
   * than the previous epoch) or too far ahead. Only an authenticated frame moves the epoch.
   */
  open(counter: number, ad: Uint8Array, ciphertextWithTag: Uint8Array): Buffer | null {
    return this.opened(counter, (key, nonce) => aeadOpen(key, nonce, ad, ciphertextWithTag));
  }

  /** open() of sealed bytes in pieces (a TCP record cut by reads): the plaintext in pieces, or null. */
  openPieces(counter: number, ad: Uint8Array, sealed: readonly Buffer[]): Buffer[] | null {
    return this.opened(counter, (key, nonce) => aeadOpenPieces(key, nonce, ad, sealed));
  }

  /** Opens with the key of `counter`'s epoch; only an authenticated frame of a later epoch makes its key the current one. */
  private opened<T>(counter: number, open: (key: Buffer, nonce: Buffer) => T | null): T | null {
    if (!isCounter(counter)) return null;
    const epoch = Math.floor(counter / this.interval);
    const key = this.keyOf(epoch);
    if (!key) return null;
    const plaintext = open(key, writeNonce(this.nonce, counter));
    if (plaintext !== null && epoch > this.epoch) {
      const skipped = epoch - this.epoch;
      this.previous = skipped === 1 ? this.key : this.ahead[skipped - 2];
      this.key = key;
      this.ahead = this.ahead.slice(skipped);
      this.epoch = epoch;
    }
    return plaintext;
  }

  private keyOf(epoch: number): Buffer | undefined {
    if (epoch === this.epoch) return this.key;
    if (epoch === this.epoch - 1) return this.previous;
    const index = epoch - this.epoch - 1;
    if (index < 0 || index >= MAX_EPOCHS_AHEAD) return undefined;
    while (this.ahead.length <= index) this.ahead.push(rekey(this.ahead.at(-1) ?? this.key));
    return this.ahead[index];
  }
}
