// The initiator's side of an Endpoint (PROTOCOL.md 3.4): tries of a handshake with an owner at
// one or more candidate addresses, the answers to them (a RESP, a cookie, VERSION_NOT_SUPPORTED),
// and the connection the first answer makes.
import { P2pError } from '../core/errors';
import type { PrivateKey } from '../core/x25519';
import { PROTOCOL_VERSION, type ClearFrame } from '../wire/frame';
import { decodeVersionNotSupported } from '../wire/handshake';
import type { Remote, SecureConnection } from './connection';
import type { ConnectionTable } from './connection-table';
import { Initiator } from './handshake';

/** Connect tries: a fresh INIT, then wait this long (3.5 s in all, PROTOCOL.md 3.4). */
export const HANDSHAKE_DELAYS_MS = [500, 1000, 2000];

export interface DialOptions {
  peerKey: Buffer;
  ownerName: string;
  signal?: AbortSignal;
  delaysMs?: number[];
  /** Send each try's INIT again this often while it lasts (NAT hole punching). */
  resendMs?: number;
}

export class Dialer {
  private readonly initiator: Initiator;
  /** Tries that a VERSION_NOT_SUPPORTED may end, by their index. */
  private readonly versionWaits = new Map<number, (lowest: number, highest: number) => void>();

  constructor(
    identity: PrivateKey,
    private readonly table: ConnectionTable,
    private readonly sendRaw: (datagram: Buffer, to: Remote) => void,
    private readonly onConnected: () => void,
  ) {
    this.initiator = new Initiator(identity);
  }

  /**
   * Handshakes with the owner `ownerName`, whose key is `peerKey`, at any of `candidates`: each
   * try's INIT goes to every candidate (again every `resendMs` while the try lasts, when given:
   * NAT hole punching), and the first answer's path is the connection's. Fresh tries after
   * `delaysMs` (default 500, 1000, 2000 ms), then OFFLINE; VERSION_NOT_SUPPORTED gives
   * INCOMPATIBLE_VERSION at once.
   */
  dial(remotes: Remote[], o: DialOptions): Promise<SecureConnection> {
    const delays = o.delaysMs ?? HANDSHAKE_DELAYS_MS;
    return new Promise<SecureConnection>((resolve, reject) => {
      let step = 0;
      let index = 0;
      let datagram: Buffer | undefined;
      let timer: NodeJS.Timeout | undefined;
      let resender: NodeJS.Timeout | undefined;
      let cookieRetries = 0;
      const finish = (err: Error | null, conn?: SecureConnection) => {
        clearTimeout(timer);
        clearInterval(resender);
        this.initiator.end(index);
        this.versionWaits.delete(index);
        o.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(conn!);
      };
      const onAbort = () => finish(new P2pError('ABORTED', 'interrupted'));
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const sendAll = () => {
        for (const r of remotes) if (datagram) this.sendRaw(datagram, r);
      };
      const send = () => {
        this.initiator.end(index);
        this.versionWaits.delete(index);
        const started: { index: number; datagram: Buffer } = this.initiator.start({
          remotes,
          peerKey: o.peerKey,
          ownerName: o.ownerName,
          isIndexFree: (i) => !this.table.has(i),
          onKeys: (keys, responderIndex, from) => {
            const conn = this.table.add(keys, responderIndex, from, true, started.index);
            conn.lastActive = performance.now();
            this.onConnected();
            finish(null, conn);
          },
          // A cookie: the owner is under load and wants proof of our address; ask again at once
          // with it (a few times per try at most, so a confused owner cannot make us loop).
          onCookie: () => {
            if (cookieRetries++ < 3) send();
          },
        });
        index = started.index;
        datagram = started.datagram;
        this.versionWaits.set(index, (lowest, highest) =>
          finish(new P2pError('INCOMPATIBLE_VERSION', `peer '${o.ownerName}' speaks protocol versions ${lowest}-${highest}; this p2pshare speaks ${PROTOCOL_VERSION}`)),
        );
        sendAll();
      };
      const next = () => {
        if (step >= delays.length) {
          const where = remotes.map((r) => `${r.address}:${r.port}`).join(', ');
          return finish(new P2pError('OFFLINE', `peer '${o.ownerName}' is offline (no answer from ${where})`));
        }
        cookieRetries = 0;
        send();
        timer = setTimeout(next, delays[step++]);
      };
      if (o.signal?.aborted) return onAbort();
      // The same INIT again and again while the NATs on the way open: a copy that gets through
      // first is answered, later copies are replays the owner drops.
      if (o.resendMs) resender = setInterval(sendAll, o.resendMs);
      next();
    });
  }

  /** A HANDSHAKE_RESP; false when it answers no try of ours. */
  onResp(frame: ClearFrame, from: Remote): boolean {
    return this.initiator.onResp(frame, from);
  }

  /** A COOKIE_REPLY; false when it answers no try of ours. */
  onCookieReply(frame: ClearFrame): boolean {
    return this.initiator.onCookieReply(frame);
  }

  /** A VERSION_NOT_SUPPORTED; false unless it answers a try of ours from where that try went. */
  onVersionNotSupported(frame: ClearFrame, from: Remote): boolean {
    const refused = this.versionWaits.get(frame.id);
    const range = decodeVersionNotSupported(frame);
    if (!refused || !range || !this.initiator.sentTo(frame.id, from)) return false;
    refused(range.lowest, range.highest);
    return true;
  }
}
