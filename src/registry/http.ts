// The registry's HTTP plumbing under its API (server.ts): request targets split without a URL
// object when plain, bodies read up to a cap, JSON answers, the errors a handler throws, and
// listening with a backlog that a connection flood does not fill.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const MAX_BODY_BYTES = 16 * 1024;

/** A client that went away before its request was read. */
export class ClientGone extends Error {}

/** An answer other than success: its status, its error code and message, its headers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) {
    return Promise.reject(new HttpError(413, 'body_too_large', `request body over ${MAX_BODY_BYTES} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.pause();
        reject(new HttpError(413, 'body_too_large', `request body over ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => reject(new ClientGone()));
    req.on('close', () => {
      if (!req.complete) reject(new ClientGone());
    });
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  // One headers object built in place (no spreads): this runs for every answer.
  const h: Record<string, string | number> = headers ? Object.assign({}, headers) : {};
  if (text) {
    h['Content-Type'] = 'application/json';
    h['Content-Length'] = Buffer.byteLength(text);
  }
  h['Cache-Control'] = 'no-store';
  res.writeHead(status, h);
  res.end(text);
}

const PLAIN_PATH = /^(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*\/?$/;

/**
 * The path and query of a request target. Plain paths (all the API's) are split as they are,
 * without a URL object per request; anything URL parsing could change (dot segments, escapes,
 * backslashes, "//", a full URL) goes through it, so both read the same path. Pure.
 */
export function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q + 1);
  if (PLAIN_PATH.test(path) && !query.includes('#')) return { path, query };
  const url = new URL(target, 'http://registry.invalid');
  return { path: url.pathname, query: url.search.slice(1) };
}

/**
 * Connections the kernel may hold until the registry accepts them (it caps this at somaxconn).
 * Node's default of 511 fills during a connection flood, and a legitimate SYN dropped then waits
 * a second for its retransmission.
 */
export const LISTEN_BACKLOG = 4096;

/** Listens and resolves with the bound port. */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
