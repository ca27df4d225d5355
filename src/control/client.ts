// Requester side of the control protocol: requests with IDs over one UDP socket, retried with
// back-off; an owner that never answers is reported offline (exit 3) within about 4 s.
import { randomInt } from 'node:crypto';
import { P2pError } from '../core/errors';
import type { Endpoint, Remote } from '../net/endpoint';
import { FrameType, PROTOCOL_VERSION, type Frame } from '../wire/frame';
import {
  decodeGetResponse,
  decodeListResponse,
  encodeGetRequest,
  encodeListRequest,
  LIST_END,
  type GetRequest,
  type GetResponse,
  type ListEntry,
} from '../wire/control';

/** Wait after each try: 3 tries, 3.5 s in all. */
export const RETRY_DELAYS_MS = [500, 1000, 2000];
const MAX_LIST_PAGES = 10_000;

interface Pending {
  to: Remote;
  resolve: (f: Frame) => void;
}

export class ControlClient {
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly endpoint: Endpoint) {
    const onAnswer = (f: Frame, from: Remote) => {
      const p = this.pending.get(f.id);
      // Only the address we asked may answer (a spoofed or stray answer is dropped).
      if (!p || p.to.address !== from.address || p.to.port !== from.port) return endpoint.reject();
      this.pending.delete(f.id);
      p.resolve(f);
    };
    endpoint.on(FrameType.listResponse, onAnswer);
    endpoint.on(FrameType.getResponse, onAnswer);
    endpoint.on(FrameType.versionNotSupported, onAnswer);
  }

  async request(type: number, body: Buffer, to: Remote, peerName: string): Promise<Frame> {
    const id = randomInt(1, 0xffffffff);
    const answered = new Promise<Frame>((resolve) => this.pending.set(id, { to, resolve }));
    try {
      for (const delay of RETRY_DELAYS_MS) {
        this.endpoint.send(type, id, body, to);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), delay)));
        const frame = await Promise.race([answered, timeout]);
        clearTimeout(timer);
        if (frame?.type === FrameType.versionNotSupported) throw versionError(frame, peerName);
        if (frame) return frame;
      }
    } finally {
      this.pending.delete(id);
    }
    throw new P2pError('OFFLINE', `peer '${peerName}' is offline (no answer from ${to.address}:${to.port})`);
  }

  async list(to: Remote, peerName: string): Promise<ListEntry[]> {
    const entries: ListEntry[] = [];
    let start = 0;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const f = await this.request(FrameType.listRequest, encodeListRequest(start), to, peerName);
      const res = decodeListResponse(f.body);
      if (!res) throw new P2pError('FAILED', `peer '${peerName}' sent a malformed file list`);
      entries.push(...res.entries);
      if (res.nextIndex === LIST_END || res.nextIndex <= start || res.entries.length === 0) break;
      start = res.nextIndex;
    }
    return entries;
  }

  async get(to: Remote, peerName: string, req: GetRequest): Promise<GetResponse> {
    const f = await this.request(FrameType.getRequest, encodeGetRequest(req), to, peerName);
    const res = decodeGetResponse(f.body);
    if (!res) throw new P2pError('FAILED', `peer '${peerName}' sent a malformed answer`);
    return res;
  }

  close(): void {
    this.endpoint.off(FrameType.listResponse);
    this.endpoint.off(FrameType.getResponse);
    this.endpoint.off(FrameType.versionNotSupported);
  }
}

function versionError(f: Frame, peerName: string): P2pError {
  const range = f.body.length >= 2 ? `${f.body[0]}-${f.body[1]}` : 'unknown';
  return new P2pError('INCOMPATIBLE_VERSION', `peer '${peerName}' speaks protocol versions ${range}; this p2pshare speaks ${PROTOCOL_VERSION}`);
}
