// Requester side of the control protocol: requests with IDs over a connection to the owner,
// retried with back-off; an owner that never answers is reported OFFLINE within about 4 s.
import { randomInt } from 'node:crypto';
import { P2pError } from '../core/errors';
import type { Connection } from '../net/connection';
import type { Endpoint } from '../net/endpoint';
import { FrameType, type Frame } from '../wire/frame';
import {
  decodeGetResponse,
  decodeListResponse,
  encodeGetRequest,
  encodeListRequest,
  LIST_END,
  ListStatus,
  type GetRequest,
  type GetResponse,
  type ListEntry,
} from '../wire/control';

/** Wait after each try: 3 tries, 3.5 s in all. */
export const RETRY_DELAYS_MS = [500, 1000, 2000];
const MAX_LIST_PAGES = 10_000;

interface Pending {
  conn: Connection;
  resolve: (f: Frame) => void;
}

export class ControlClient {
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly endpoint: Endpoint) {
    const onAnswer = (f: Frame, conn: Connection) => {
      const p = this.pending.get(f.id);
      // Only the connection we asked on may answer (a spoofed or stray answer is dropped).
      if (!p || p.conn !== conn) return endpoint.reject();
      this.pending.delete(f.id);
      p.resolve(f);
    };
    endpoint.on(FrameType.listResponse, onAnswer);
    endpoint.on(FrameType.getResponse, onAnswer);
  }

  async request(type: number, body: Buffer, conn: Connection, peerName: string): Promise<Frame> {
    const id = randomInt(1, 0xffffffff);
    const answered = new Promise<Frame>((resolve) => this.pending.set(id, { conn, resolve }));
    const release = conn.hold();
    try {
      for (const delay of RETRY_DELAYS_MS) {
        conn.send(type, id, body);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), delay)));
        const frame = await Promise.race([answered, timeout]);
        clearTimeout(timer);
        if (frame) return frame;
      }
    } finally {
      this.pending.delete(id);
      release();
    }
    throw new P2pError('OFFLINE', `peer '${peerName}' is offline (no answer from ${conn.remote.address}:${conn.remote.port})`);
  }

  async list(conn: Connection, peerName: string): Promise<ListEntry[]> {
    const entries: ListEntry[] = [];
    let start = 0;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const f = await this.request(FrameType.listRequest, encodeListRequest(start), conn, peerName);
      const res = decodeListResponse(f.body);
      if (!res) throw new P2pError('FAILED', `peer '${peerName}' sent a malformed file list`);
      if (res.status === ListStatus.forbidden) throw forbidden(peerName);
      if (res.status !== ListStatus.ok) throw new P2pError('FAILED', `peer '${peerName}' refused to list its files (status ${res.status})`);
      entries.push(...res.entries);
      if (res.nextIndex === LIST_END || res.nextIndex <= start || res.entries.length === 0) break;
      start = res.nextIndex;
    }
    return entries;
  }

  async get(conn: Connection, peerName: string, req: GetRequest): Promise<GetResponse> {
    const f = await this.request(FrameType.getRequest, encodeGetRequest(req), conn, peerName);
    const res = decodeGetResponse(f.body);
    if (!res) throw new P2pError('FAILED', `peer '${peerName}' sent a malformed answer`);
    return res;
  }

  close(): void {
    this.endpoint.off(FrameType.listResponse);
    this.endpoint.off(FrameType.getResponse);
  }
}

/** The owner's --allow list does not hold this requester's key (a LIST or GET refused so). */
export function forbidden(peer: string): P2pError {
  return new P2pError('FORBIDDEN', `peer '${peer}' does not serve you: your key is not on its --allow list (show yours with p2pshare id)`);
}
