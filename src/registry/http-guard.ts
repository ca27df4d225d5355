// The registry's HTTP server under abuse (README.md, "Limits"): deadlines for headers and bodies
// checked four times a second (Node's own check runs every 30 s), a cap on connections per client
// and in all (sized below the file-descriptor limit), idle keep-alive connections closed, and
// abusive sockets reset and destroyed at once: never half-closed, which would keep their file
// descriptor until the client chose to close (FIN-WAIT-2 on its side, CLOSE-WAIT never reached).
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { clientKey } from './address-policy';
import type { EventLog } from './event-log';

export interface HttpTimeouts {
  /** A request's headers must be complete within this many ms of its first byte (or of the connection). */
  headersTimeoutMs: number;
  /** The whole request, body included, within this many ms. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this many ms. */
  keepAliveTimeoutMs: number;
  /** How often the deadlines are checked. */
  checkIntervalMs: number;
}

export interface HttpLimits extends HttpTimeouts {
  /** Connections held at once, in all. */
  maxConnections: number;
  /** Connections held at once per client (IPv4 address or IPv6 /64). */
  maxConnectionsPerIp: number;
}

export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = {
  headersTimeoutMs: 1000,
  requestTimeoutMs: 2000,
  keepAliveTimeoutMs: 5000,
  checkIntervalMs: 250,
};

/** No answer written and no byte read for this long: the socket is destroyed (a client that stopped reading). */
const SOCKET_IDLE_MS = 10_000;

/** Closes a socket at once: RST, so neither side keeps any state (nor this process a descriptor). */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function' && !socket.connecting) socket.resetAndDestroy();
  else socket.destroy();
}

/** Admits or refuses each new connection by the per-client and global caps. */
export class ConnectionGuard {
  private readonly byClient = new Map<string, Set<Socket>>();
  /** Sockets with a request being read or answered (evicted last): the request handler marks them. */
  readonly busy = new WeakSet<Socket>();
  /** Sockets this guard closed for a reason it already logged. */
  readonly cut = new WeakSet<Socket>();
  open = 0;

  constructor(
    private readonly limits: Pick<HttpLimits, 'maxConnections' | 'maxConnectionsPerIp'>,
    private readonly log: EventLog,
  ) {}

  /** Called for each new connection; false when it was refused (and reset). */
  admit(socket: Socket): boolean {
    const key = clientKey(socket.remoteAddress ?? '');
    let mine = this.byClient.get(key);
    if (mine && mine.size >= this.limits.maxConnectionsPerIp) {
      this.log.note('connections_per_ip', `refused a connection from ${key}: it holds ${mine.size}, the most per client (--max-connections-per-ip)`);
      resetSocket(socket);
      return false;
    }
    if (this.open >= this.limits.maxConnections && !this.evictFor(mine?.size ?? 0)) {
      this.log.note('max_connections', `refused a connection from ${key}: ${this.open} open, the most in all (--max-connections)`);
      resetSocket(socket);
      return false;
    }
    if (!mine) this.byClient.set(key, (mine = new Set()));
    const set = mine;
    set.add(socket);
    this.open++;
    socket.once('close', () => this.release(key, set, socket));
    return true;
  }

  /** Counts a connection out, once: when it closes, or at once when it is evicted. */
  private release(key: string, set: Set<Socket>, socket: Socket): void {
    if (!set.delete(socket)) return;
    this.open--;
    if (set.size === 0 && this.byClient.get(key) === set) this.byClient.delete(key);
  }

  /**
   * At the global cap, a newcomer holding `mine` connections takes the place of the oldest idle
   * connection of the client holding the most, if that client holds more than the newcomer would:
   * the cap is shared fairly, and flooding it from a few addresses cannot lock others out.
   */
  private evictFor(mine: number): boolean {
    let hog: Set<Socket> | undefined;
    let hogKey = '';
    for (const [key, set] of this.byClient) {
      if (!hog || set.size > hog.size) {
        hog = set;
        hogKey = key;
      }
    }
    if (!hog || hog.size <= mine + 1) return false;
    let victim: Socket | undefined;
    for (const s of hog) {
      if (!this.busy.has(s)) {
        victim = s;
        break;
      }
    }
    victim ??= hog.values().next().value!;
    this.log.note('connection_evicted', `closed the oldest connection of the client holding the most (${hog.size}) to admit another at the cap (--max-connections)`);
    // Counted out at once (its 'close' comes later): a burst of newcomers evicts as many distinct
    // sockets, and the count of open connections stays true meanwhile.
    this.release(hogKey, hog, victim);
    this.cut.add(victim);
    resetSocket(victim);
    return true;
  }

  /** Open connections of the client of `address` (for tests and metrics). */
  countFor(address: string): number {
    return this.byClient.get(clientKey(address))?.size ?? 0;
  }
}

/** Applies the limits to `server`, logging what it refuses through `log`. */
export function guardServer(server: Server, limits: HttpLimits, log: EventLog): ConnectionGuard {
  const guard = new ConnectionGuard(limits, log);
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxHeadersCount = 100;
  server.setTimeout(SOCKET_IDLE_MS);
  server.on('connection', (socket: Socket) => {
    guard.admit(socket);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? '';
    guard.cut.add(socket);
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      const body = guard.busy.has(socket);
      log.note(body ? 'body_timeout' : 'header_timeout', body
        ? `closed a connection from ${socket.remoteAddress}: its request body was not complete within ${limits.requestTimeoutMs / 1000} s`
        : `closed a connection from ${socket.remoteAddress}: its request headers were not complete within ${limits.headersTimeoutMs / 1000} s`);
      resetSocket(socket);
    } else if (code === 'HPE_INVALID_EOF_STATE' || code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      log.note('aborted', `a client from ${socket.remoteAddress ?? '?'} went away in the middle of a request (${code || err.message})`);
      socket.destroy();
    } else {
      const status = code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      log.note('bad_request', `answered ${status.slice(0, 3)} to ${socket.remoteAddress}: ${code || err.message}`);
      // Answer, then close our side and let go of the descriptor once it is written.
      socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroySoon();
    }
  });
  return guard;
}
