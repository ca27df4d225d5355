// The load generator's HTTP client: one connection per request from a chosen loopback source
// address, as the peers' own client does, written straight on a socket. node:http's client costs
// about a quarter more CPU per request here, and on 2 cores the generator's CPU is taken from the
// registries it measures. Answers are read whole (the registry closes after `connection: close`).
import net from 'node:net';
import type { Answer } from '../test/registry/http-from';

const TIMEOUT_MS = 10_000;
const MAX_ANSWER_BYTES = 1 << 20;

/** One request on its own connection from `from`; rejects on a network error or after 10 s. */
export function rawRequest(where: string | URL, method: string, path: string, from: string, opts: { body?: string; token?: string } = {}): Promise<Answer> {
  const t0 = performance.now();
  const url = typeof where === 'string' ? new URL(where) : where;
  const body = opts.body ?? '';
  const head =
    `${method} ${path} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    (body ? 'content-type: application/json\r\n' : '') +
    (opts.token ? `authorization: Bearer ${opts.token}\r\n` : '') +
    '\r\n';
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port), localAddress: from });
    const chunks: Buffer[] = [];
    let size = 0;
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_ANSWER_BYTES) socket.destroy(new Error('answer too large'));
      else chunks.push(d);
    });
    socket.on('end', () => {
      // latin1 keeps one character per byte, so chunk sizes count right; utf8 once cut out.
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(text);
      const split = text.indexOf('\r\n\r\n');
      if (!status || split < 0) reject(new Error(`malformed answer: ${JSON.stringify(text.slice(0, 80))}`));
      else resolve({ status: Number(status[1]), body: Buffer.from(decodeBody(text.slice(0, split), text.slice(split + 4)), 'latin1').toString('utf8'), ms: performance.now() - t0 });
      socket.destroy();
    });
    socket.on('error', reject);
    socket.write(head + body); // no half-close: the registry closes once it has answered
  });
}

/** The body as sent: plain, or chunked (an answer without content-length). */
function decodeBody(head: string, raw: string): string {
  if (!/\r\ntransfer-encoding: *chunked/i.test(head)) return raw;
  let out = '';
  for (let at = 0; ; ) {
    const eol = raw.indexOf('\r\n', at);
    const n = parseInt(raw.slice(at, eol), 16);
    if (!(n > 0)) return out;
    out += raw.slice(eol + 2, eol + 2 + n);
    at = eol + 2 + n + 2;
  }
}
