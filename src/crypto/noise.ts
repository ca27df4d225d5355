// Noise Protocol Framework, revision 34, for exactly one protocol:
// Noise_IK_25519_ChaChaPoly_SHA256 (spec sections 5 and 7.5). Pure state machines, no I/O.
//
//   IK:  <- s
//        ...
//        -> e, es, s, ss
//        <- e, ee, se
import { PrivateKey, X25519_KEY_BYTES } from '../core/x25519';
import { aeadOpen, aeadSeal, hmacSha256, KEY_BYTES, noiseNonce, rekey, sha256, TAG_BYTES } from './primitives';

export const PROTOCOL_NAME = 'Noise_IK_25519_ChaChaPoly_SHA256';
/** Noise section 3: no message is longer than 65535 bytes. */
export const MAX_MESSAGE_BYTES = 65535;

const DH_BYTES = X25519_KEY_BYTES;
const EMPTY = Buffer.alloc(0);

/** Section 5.1: a key and a 64-bit nonce (kept below 2^53 here, far beyond any handshake). */
export class CipherState {
  private n = 0;

  constructor(private k: Buffer | undefined = undefined) {
    if (k && k.length !== KEY_BYTES) throw new RangeError('a cipher key is 32 bytes');
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Buffer {
    if (!this.k) return Buffer.from(plaintext);
    const out = aeadSeal(this.k, noiseNonce(this.nextNonce()), ad, [plaintext]);
    this.n++;
    return out;
  }

  /** The plaintext, or null (and n unchanged) when the ciphertext does not authenticate. */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Buffer | null {
    if (!this.k) return Buffer.from(ciphertext);
    const plaintext = aeadOpen(this.k, noiseNonce(this.nextNonce()), ad, ciphertext);
    if (plaintext) this.n++;
    return plaintext;
  }

  rekey(): void {
    if (this.k) this.k = rekey(this.k);
  }

  private nextNonce(): number {
    if (this.n >= Number.MAX_SAFE_INTEGER) throw new Error('Noise nonce exhausted');
    return this.n;
  }
}

/** Section 4.3: HKDF with HMAC-SHA256, all three outputs. */
function hkdf(ck: Buffer, ikm: Uint8Array): [Buffer, Buffer, Buffer] {
  const temp = hmacSha256(ck, ikm);
  const o1 = hmacSha256(temp, Buffer.of(1));
  const o2 = hmacSha256(temp, o1, Buffer.of(2));
  const o3 = hmacSha256(temp, o2, Buffer.of(3));
  return [o1, o2, o3];
}

/** Section 5.2. */
class SymmetricState {
  private cipher = new CipherState();
  h: Buffer;
  private ck: Buffer;

  constructor() {
    // The protocol name is exactly HASHLEN (32) bytes, so h is the name itself.
    this.h = Buffer.from(PROTOCOL_NAME, 'ascii');
    this.ck = this.h;
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf(this.ck, ikm);
    this.ck = ck;
    this.cipher = new CipherState(k);
  }

  mixHash(data: Uint8Array): void {
    this.h = sha256(this.h, data);
  }

  encryptAndHash(plaintext: Uint8Array): Buffer {
    const ciphertext = this.cipher.encryptWithAd(this.h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Buffer | null {
    const plaintext = this.cipher.decryptWithAd(this.h, ciphertext);
    if (plaintext) this.mixHash(ciphertext);
    return plaintext;
  }

  /** Split() plus the third output of the same HKDF chain (the TCP base key). */
  split(): [Buffer, Buffer, Buffer] {
    return hkdf(this.ck, EMPTY);
  }
}

/** What a completed handshake gives each side. Keys are 32 raw bytes. */
export interface HandshakeResult {
  /** The key this side seals with (initiator: Split()'s first output, responder: its second). */
  send: Buffer;
  receive: Buffer;
  /** Third output of Split()'s HKDF: HMAC(temp_k, output2 || 0x03). */
  tcpBase: Buffer;
  handshakeHash: Buffer;
  remoteStatic: Buffer;
}

export interface InitiatorOptions {
  prologue: Uint8Array;
  staticKey: PrivateKey;
  /** The responder's static public key, known in advance (the "<- s" pre-message). */
  remoteStatic: Uint8Array;
  /** For test vectors only; a fresh key otherwise. */
  ephemeral?: PrivateKey;
}

export interface ResponderOptions {
  prologue: Uint8Array;
  staticKey: PrivateKey;
  ephemeral?: PrivateKey;
}

type Step = 'write1' | 'read1' | 'write2' | 'read2' | 'done' | 'failed';

/**
 * Section 5.3 for IK. Message 1 is 96 bytes + the payload, message 2 48 bytes + the payload.
 * readMessage() returns null on any bad input (wrong length, bad tag, small-order key) and the
 * state is then dead: callers count the message as dropped and discard the state.
 */
export class HandshakeState {
  private readonly ss = new SymmetricState();
  /** Made when message 1 or 2 is written, so a refused message 1 costs no key generation. */
  private e: PrivateKey | undefined;
  private re: Buffer | undefined;
  private rs: Buffer | undefined;
  private step: Step;

  private constructor(
    readonly initiator: boolean,
    prologue: Uint8Array,
    private readonly s: PrivateKey,
    rs: Uint8Array | undefined,
    ephemeral: PrivateKey | undefined,
  ) {
    this.e = ephemeral;
    this.ss.mixHash(prologue);
    if (rs) {
      if (rs.length !== DH_BYTES) throw new RangeError('a static public key is 32 bytes');
      this.rs = Buffer.from(rs);
    }
    // The pre-message "<- s": both sides hash the responder's static key.
    this.ss.mixHash(initiator ? this.rs! : s.publicKey);
    this.step = initiator ? 'write1' : 'read1';
  }

  static initiator(o: InitiatorOptions): HandshakeState {
    return new HandshakeState(true, o.prologue, o.staticKey, o.remoteStatic, o.ephemeral);
  }

  static responder(o: ResponderOptions): HandshakeState {
    return new HandshakeState(false, o.prologue, o.staticKey, undefined, o.ephemeral);
  }

  /** The peer's static key: known from the start for the initiator, after message 1 for the responder. */
  get remoteStatic(): Buffer | undefined {
    return this.rs;
  }

  get complete(): boolean {
    return this.step === 'done';
  }

  /** Throws if called out of turn, or if the remote static key is of small order (a bad key from the registry). */
  writeMessage(payload: Uint8Array = EMPTY): Buffer {
    const step = this.step;
    if (step !== 'write1' && step !== 'write2') throw new Error(`Noise handshake: cannot write in step ${step}`);
    const ss = this.ss;
    const e = (this.e ??= PrivateKey.generate());
    const parts: Buffer[] = [e.publicKey];
    ss.mixHash(e.publicKey);
    if (step === 'write1') {
      ss.mixKey(e.dh(this.rs!)); // es
      parts.push(ss.encryptAndHash(this.s.publicKey)); // s
      ss.mixKey(this.s.dh(this.rs!)); // ss
    } else {
      ss.mixKey(e.dh(this.re!)); // ee
      ss.mixKey(e.dh(this.rs!)); // se
    }
    parts.push(ss.encryptAndHash(payload));
    const message = Buffer.concat(parts);
    if (message.length > MAX_MESSAGE_BYTES) throw new RangeError('Noise message over 65535 bytes');
    this.step = step === 'write1' ? 'read2' : 'done';
    return message;
  }

  /** The decrypted payload, or null when the message is refused (the state is then dead). */
  readMessage(message: Uint8Array): Buffer | null {
    const step = this.step;
    if (step !== 'read1' && step !== 'read2') throw new Error(`Noise handshake: cannot read in step ${step}`);
    this.step = 'failed';
    let payload: Buffer | null;
    try {
      payload = step === 'read1' ? this.read1(message) : this.read2(message);
    } catch {
      // X25519 refuses small-order points; nothing else here throws on hostile input.
      payload = null;
    }
    if (payload) this.step = step === 'read1' ? 'write2' : 'done';
    return payload;
  }

  private read1(m: Uint8Array): Buffer | null {
    const sealedStatic = DH_BYTES + TAG_BYTES;
    if (m.length < DH_BYTES + sealedStatic + TAG_BYTES || m.length > MAX_MESSAGE_BYTES) return null;
    const ss = this.ss;
    this.re = Buffer.from(m.subarray(0, DH_BYTES));
    ss.mixHash(this.re);
    ss.mixKey(this.s.dh(this.re)); // es
    const rs = ss.decryptAndHash(m.subarray(DH_BYTES, DH_BYTES + sealedStatic)); // s
    if (!rs) return null;
    this.rs = rs;
    ss.mixKey(this.s.dh(rs)); // ss
    return ss.decryptAndHash(m.subarray(DH_BYTES + sealedStatic));
  }

  private read2(m: Uint8Array): Buffer | null {
    if (m.length < DH_BYTES + TAG_BYTES || m.length > MAX_MESSAGE_BYTES) return null;
    const ss = this.ss;
    this.re = Buffer.from(m.subarray(0, DH_BYTES));
    ss.mixHash(this.re);
    ss.mixKey(this.e!.dh(this.re)); // ee
    ss.mixKey(this.s.dh(this.re)); // se
    return ss.decryptAndHash(m.subarray(DH_BYTES));
  }

  /** Section 5.2 Split(), after message 2; the keys are oriented for this side. */
  split(): HandshakeResult {
    if (this.step !== 'done') throw new Error(`Noise handshake: split() before completion (step ${this.step})`);
    const [k1, k2, tcpBase] = this.ss.split();
    return {
      send: this.initiator ? k1 : k2,
      receive: this.initiator ? k2 : k1,
      tcpBase,
      handshakeHash: this.ss.h,
      remoteStatic: this.rs!,
    };
  }
}
