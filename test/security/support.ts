// Shared tools of the security tests: an exact search for any 16-byte window of a file in a
// capture, a raw UDP socket that counts every byte it sends and receives (an attacker, or a
// requester whose every datagram the test sees), and handshakes made from such a socket with the
// implementation's own Initiator, so an attack starts from genuine frames.
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PrivateKey } from '../../src/core/x25519';
import { Peer } from '../../src/peer/peer';
import { ShareIndex } from '../../src/peer/share';
import { RegistryClient } from '../../src/registry/client';
import { SecureConnection, type DatagramSocket, type Remote, type SessionKeys } from '../../src/net/connection';
import { Initiator } from '../../src/net/handshake';
import { decodeClearFrame, Envelope } from '../../src/wire/frame';
import { INIT_BYTES, MAC1_AT } from '../../src/wire/handshake';
import { tempDir } from '../support/cli';
import { randomFile, registry } from '../peer/support';

export const WINDOW = 16;

/**
 * A registry and an owner in this process (its counters in reach) sharing one file of random
 * bytes, in a temporary folder; close() undoes it all.
 */
export async function ownerSharing(name: string, fileName: string, size: number) {
  const { dir, cleanup } = await tempDir(`p2pshare-${name}-`);
  const reg = await registry({ ttl: 300 });
  const path = join(dir, 'share', fileName);
  await randomFile(path, size);
  const owner = await Peer.start({ name, registryUrl: reg.url, share: await ShareIndex.build([path]), port: 0 });
  return {
    dir,
    reg,
    owner,
    file: await readFile(path),
    /** Registers the owner's name (with its own key) at 127.0.0.1:`port`: a relay or proxy in front of it. */
    pointAt: (port: number) => new RegistryClient(reg.url).register({ name, port, ip: '127.0.0.1' }, owner.identity),
    async close() {
      await owner.stop();
      await reg.close();
      await cleanup();
    },
  };
}
const EMPTY = 0;

/** Polls `cond` every 5 ms; throws naming `what` after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function windowHash(b: Buffer, i: number): number {
  let h = Math.imul(b.readUInt32LE(i) ^ 0x5bd1e995, 0x9e3779b1);
  h = Math.imul(h ^ b.readUInt32LE(i + 4), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h ^ b.readUInt32LE(i + 8), 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h ^ b.readUInt32LE(i + 12), 0x27d4eb2f);
  return (h ^ (h >>> 15)) >>> 0;
}

/**
 * Every distinct 16-byte window of a file (one per offset), in an open-addressing table keyed by
 * a hash of the window and holding the window's offset: a lookup compares the bytes themselves,
 * so a hit is a real occurrence and no occurrence is missed (exact, not probabilistic).
 */
export class FileWindows {
  private readonly slots: Int32Array;
  private readonly mask: number;
  /** Distinct windows stored (1 for a file of zeros). */
  distinct = 0;

  constructor(private readonly file: Buffer) {
    const windows = Math.max(0, file.length - WINDOW + 1);
    let size = 1024;
    while (size < 2 * windows) size *= 2;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
    for (let i = 0; i < windows; i++) this.insert(i);
  }

  /** Offsets in `haystack` where some 16-byte window of the file starts. */
  find(haystack: Buffer): number[] {
    const hits: number[] = [];
    for (let i = 0; i + WINDOW <= haystack.length; i++) if (this.lookup(haystack, i)) hits.push(i);
    return hits;
  }

  private insert(offset: number): void {
    for (let s = windowHash(this.file, offset) & this.mask; ; s = (s + 1) & this.mask) {
      const at = this.slots[s]!;
      if (at === EMPTY) {
        this.slots[s] = offset + 1;
        this.distinct++;
        return;
      }
      if (this.file.compare(this.file, at - 1, at - 1 + WINDOW, offset, offset + WINDOW) === 0) return; // seen
    }
  }

  private lookup(b: Buffer, i: number): boolean {
    for (let s = windowHash(b, i) & this.mask; ; s = (s + 1) & this.mask) {
      const at = this.slots[s]!;
      if (at === EMPTY) return false;
      if (b.compare(this.file, at - 1, at - 1 + WINDOW, i, i + WINDOW) === 0) return true;
    }
  }
}

/** Where a window of the file was found: which captured unit (a datagram, or a TCP stream one way) and where in it. */
export interface Hit {
  unit: Buffer;
  label: string;
  at: number;
}

/** Every occurrence of a file window in the units; each unit is searched as one contiguous run of bytes. */
export function findWindows(windows: FileWindows, units: Array<{ label: string; data: Buffer }>): Hit[] {
  return units.flatMap((u) => windows.find(u.data).map((at) => ({ unit: u.data, label: u.label, at })));
}

/**
 * A HANDSHAKE_INIT's mac2 is 16 zero bytes when the initiator holds no cookie (PROTOCOL.md 3.4):
 * the one place a window of zeros is protocol, not content. True when the hit lies inside the
 * INIT's macs and CRC (bytes 116-151), which carry nothing of any file.
 */
export function isInitMac(h: Hit): boolean {
  const f = decodeClearFrame(h.unit);
  return typeof f !== 'string' && f.type === Envelope.handshakeInit && h.unit.length === INIT_BYTES && h.at >= MAC1_AT && h.at + WINDOW <= INIT_BYTES;
}

/**
 * A plain UDP socket that counts every byte both ways and keeps what it received (the first
 * `keep` datagrams). As a DatagramSocket it can carry a SecureConnection built from a handshake
 * it made itself.
 */
export class RawSocket implements DatagramSocket {
  bytesSent = 0;
  datagramsSent = 0;
  bytesReceived = 0;
  readonly received: Array<{ data: Buffer; from: Remote }> = [];
  private isClosed = false;
  private listeners: Array<(data: Buffer, from: Remote) => void> = [];

  private constructor(
    readonly socket: dgram.Socket,
    private readonly keep: number,
  ) {
    socket.on('message', (data, rinfo) => {
      this.bytesReceived += data.length;
      const from = { address: rinfo.address, port: rinfo.port };
      if (this.received.length < this.keep) this.received.push({ data, from });
      for (const l of this.listeners) l(data, from);
    });
    socket.on('error', () => {});
  }

  static async bind(host = '127.0.0.1', keep = 100_000): Promise<RawSocket> {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    socket.bind(0, host);
    await once(socket, 'listening');
    return new RawSocket(socket, keep);
  }

  get address(): Remote {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  get closed(): boolean {
    return this.isClosed;
  }

  onMessage(listener: (data: Buffer, from: Remote) => void): void {
    this.listeners.push(listener);
  }

  /** Sends and resolves once the datagram left (so a loop of sends cannot outrun the socket). */
  send(datagram: Buffer, to: Remote): Promise<void> {
    this.bytesSent += datagram.length;
    this.datagramsSent++;
    return new Promise((resolve) => this.socket.send(datagram, to.port, to.address, () => resolve()));
  }

  sendRaw(datagram: Buffer | Buffer[], to: Remote): void {
    void this.send(Array.isArray(datagram) ? Buffer.concat(datagram) : datagram, to);
  }

  countUnsendable(): void {}

  queuedBytes(): number {
    return this.socket.getSendQueueSize();
  }

  close(): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    this.isClosed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** An owner as an attacker or a raw requester knows it: where it is, its key and its name. */
export interface OwnerRef {
  address: Remote;
  publicKey: Buffer;
  name: string;
}

/** A genuine HANDSHAKE_INIT for `owner` from a fresh try (new index, ephemeral key, timestamp). */
export function freshInit(initiator: Initiator, owner: OwnerRef, on: { keys?: (keys: SessionKeys, responderIndex: number) => void; cookie?: () => void } = {}) {
  return initiator.start({
    remotes: [owner.address],
    peerKey: owner.publicKey,
    ownerName: owner.name,
    isIndexFree: () => true,
    onKeys: on.keys ?? (() => {}),
    onCookie: on.cookie ?? (() => {}),
  });
}

/**
 * A handshake from a raw socket with the implementation's Initiator: the INIT it sent (to replay)
 * and the session keys. The socket's answers are fed to the initiator until the RESP arrives.
 */
export async function rawHandshake(raw: RawSocket, owner: OwnerRef, identity = PrivateKey.generate()) {
  const initiator = new Initiator(identity);
  const got: { result?: { keys: SessionKeys; responderIndex: number } } = {};
  raw.onMessage((data, from) => {
    const f = decodeClearFrame(data);
    if (typeof f === 'string') return;
    if (f.type === Envelope.handshakeResp) initiator.onResp(f, from);
    if (f.type === Envelope.cookieReply) initiator.onCookieReply(f);
  });
  for (let attempt = 0; attempt < 5; attempt++) {
    let cookie = false;
    const { index, datagram } = freshInit(initiator, owner, { keys: (keys, responderIndex) => (got.result = { keys, responderIndex }), cookie: () => (cookie = true) });
    await raw.send(datagram, owner.address);
    for (let waited = 0; waited < 1000 && !got.result && !cookie; waited += 5) await sleep(5);
    initiator.end(index);
    if (got.result) return { ...got.result, index, init: datagram, identity };
  }
  throw new Error('no HANDSHAKE_RESP from the owner');
}

/** The initiator's end of a session whose frames go out through `raw` (maybe another socket than the handshake's). */
export function connectionOver(raw: RawSocket, hs: { keys: SessionKeys; responderIndex: number; index: number }, owner: OwnerRef): SecureConnection {
  return new SecureConnection(hs.index, hs.responderIndex, owner.address, hs.keys, true, raw);
}

/**
 * The records of an owner's TCP stream as captured (PROTOCOL.md section 5): where each starts and
 * its length field L. Record 0 is the reply; the file's bytes are in the others.
 */
export function recordsOf(stream: Buffer): Array<{ start: number; length: number }> {
  const out: Array<{ start: number; length: number }> = [];
  for (let at = 0; at + 2 <= stream.length; at += 2 + stream.readUInt16BE(at)) out.push({ start: at, length: stream.readUInt16BE(at) });
  return out;
}

/**
 * The file bytes a requester can have written from a stream whose byte `flipped` was corrupted:
 * those of the records wholly before the damaged one (it authenticates none of that one on).
 */
export function authenticatedPrefix(stream: Buffer, flipped: number): number {
  let bytes = 0;
  for (const [i, r] of recordsOf(stream).entries()) {
    if (flipped < r.start + 2 + r.length) return bytes;
    if (i > 0) bytes += r.length - 16;
  }
  return bytes;
}
