// Raw TCP clients for the abuse tests: connect from a chosen 127.0.0.x address, and learn when
// and how the server closed the connection.
import { connect, type Socket } from 'node:net';

export interface RawClient {
  socket: Socket;
  openedAt: number;
  /** Resolves once connected (rejects if the connection failed). */
  connected: Promise<void>;
  /**
   * Resolves when the server closed the connection (a FIN: 'end'; a RST: 'reset'), or it failed
   * ('error'), or we destroyed it ('local'). Our side stays open after a FIN until we destroy it.
   */
  closed: Promise<{ how: 'end' | 'reset' | 'error' | 'local'; at: number; data: string }>;
  /** Set once we destroyed it ourselves. */
  destroyLocally(): void;
}

/** A connection that keeps its side open when the server sends FIN (allowHalfOpen), as an abuser would. */
export function rawClient(port: number, localAddress: string, host = '127.0.0.1'): RawClient {
  const socket = connect({ port, host, localAddress, allowHalfOpen: true });
  const openedAt = Date.now();
  let data = '';
  let how: 'end' | 'reset' | 'error' | 'local' | null = null;
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (data += d));
  socket.on('end', () => (how ??= 'end'));
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  connected.catch(() => {});
  const closed = new Promise<{ how: 'end' | 'reset' | 'error' | 'local'; at: number; data: string }>((resolve) => {
    socket.on('error', (err: NodeJS.ErrnoException) => (how ??= err.code === 'ECONNRESET' ? 'reset' : 'error'));
    socket.on('end', () => resolve({ how: 'end', at: Date.now(), data }));
    socket.on('close', () => resolve({ how: how ?? 'error', at: Date.now(), data }));
  });
  return {
    socket,
    openedAt,
    connected,
    closed,
    destroyLocally() {
      how ??= 'local';
      socket.destroy();
    },
  };
}

/** Writes `text` every `everyMs` until the socket closes (a slowloris trickle). */
export function trickle(socket: Socket, text: string, everyMs: number): void {
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable) clearInterval(timer);
    else socket.write(text);
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

/** The value of one series of /metrics text, or NaN. */
export function metric(text: string, series: string): number {
  for (const line of text.split('\n')) if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return NaN;
}
