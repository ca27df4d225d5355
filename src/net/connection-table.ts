// The connections one Endpoint holds, by local index (PROTOCOL.md 3.3): made by a handshake,
// forgotten on CLOSE, after their idle time, or, past the table's cap, those nobody holds first.
// A responder's connection is half-open until its initiator's first authenticated frame; those
// are counted (the handshake's load test reads the count) and forgotten sooner.
import { randomInt } from 'node:crypto';
import { SecureConnection, type DatagramSocket, type Remote, type SessionKeys } from './connection';

/** A connection without an authenticated frame for this long is idle (and forgotten unless held). */
const IDLE_MS = 60_000;
/** A responder's connection whose initiator never sent a sealed frame is forgotten after this. */
const HALF_OPEN_MS = 5_000;

export class ConnectionTable {
  private readonly conns = new Map<number, SecureConnection>();
  private halfOpenCount = 0;

  constructor(
    private readonly socket: DatagramSocket,
    private readonly max: number,
  ) {}

  /** Connections in the table (validated or half-open). */
  get size(): number {
    return this.conns.size;
  }

  /** A responder's connections whose initiator has not yet sent an authenticated frame. */
  get halfOpen(): number {
    return this.halfOpenCount;
  }

  /** The connection under this local index, whatever its state. */
  get(index: number): SecureConnection | undefined {
    return this.conns.get(index >>> 0);
  }

  has(index: number): boolean {
    return this.conns.has(index);
  }

  /** A new connection under `index` (the initiator's is its try's, which the owner addresses), else a fresh one. */
  add(keys: SessionKeys, remoteIndex: number, remote: Remote, initiator: boolean, index = 0): SecureConnection {
    while (index === 0 || this.conns.has(index)) index = randomInt(1, 0x1_0000_0000);
    const conn = new SecureConnection(index, remoteIndex, remote, keys, initiator, this.socket);
    this.conns.set(index, conn);
    if (!initiator) this.halfOpenCount++;
    if (this.conns.size > this.max) this.forgetSome(conn);
    return conn;
  }

  /** A half-open connection just authenticated its initiator's first frame. */
  validated(): void {
    this.halfOpenCount--;
  }

  drop(conn: SecureConnection): void {
    if (this.conns.get(conn.localIndex) !== conn) return;
    this.conns.delete(conn.localIndex);
    if (!conn.validated) this.halfOpenCount--;
    conn.forget();
  }

  /** Half-open connections past their time and idle ones nobody holds are forgotten. */
  sweep(now: number): void {
    for (const c of this.conns.values()) {
      if (c.held) continue;
      if ((!c.validated && now - c.lastActive > HALF_OPEN_MS) || now - c.lastActive > IDLE_MS) this.drop(c);
    }
  }

  /** Forgets every connection (the socket closed). */
  clear(): void {
    for (const c of this.conns.values()) c.forget();
    this.conns.clear();
    this.halfOpenCount = 0;
  }

  /** Forgets connections nobody holds (but `keep`), half-open and idle ones first, then the oldest, down to 3/4 of the cap. */
  private forgetSome(keep: SecureConnection): void {
    const now = performance.now();
    for (const pass of [0, 1, 2]) {
      for (const c of this.conns.values()) {
        if (this.conns.size <= (this.max * 3) / 4) return;
        if (c === keep || c.held) continue;
        if (pass === 0 && c.validated) continue;
        if (pass === 1 && now - c.lastActive < IDLE_MS) continue;
        this.drop(c);
      }
    }
  }
}
