// The registry's HTTP API as the cluster tests and the load benches speak it: from a chosen
// loopback source address (every 127.x.y.z is this host, and each is one client to the registry's
// per-client limits), one connection per request as the peers' own client does, timed.
import http from 'node:http';
import type { PrivateKey } from '../../src/core/x25519';
import { signRegistration, type RegistrationFields } from '../../src/registry/proof';

/** The i-th loopback source address (127.2.0.1 onwards; no .0 or .255 octets). */
export function sourceAddress(i: number): string {
  return `127.${2 + Math.floor(i / 62_500)}.${1 + (Math.floor(i / 250) % 250)}.${1 + (i % 250)}`;
}

export interface Answer {
  status: number;
  body: string;
  ms: number;
}

/** One request with its own connection from `from`; rejects on a network error or after 10 s. */
export function request(url: string, method: string, path: string, from: string, opts: { body?: string; token?: string; agent?: http.Agent } = {}): Promise<Answer> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(opts.body);
    }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const req = http.request(new URL(path, url), { method, headers, localAddress: from, agent: opts.agent ?? false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Sends one request as `request` does (the load bench passes its own, cheaper client). */
export type Send = (url: string, method: string, path: string, from: string, opts?: { body?: string; token?: string }) => Promise<Answer>;

/** Challenge, then registration, from `from`: the token, or the failing answer. */
export async function registerFrom(url: string, from: string, identity: PrivateKey, fields: RegistrationFields, send: Send = request): Promise<{ token: string; ms: number } | Answer> {
  const c = await send(url, 'GET', '/v1/challenge', from);
  if (c.status !== 200) return c;
  const signed = signRegistration(identity, JSON.parse(c.body), fields);
  if (!signed) throw new Error('malformed challenge');
  const r = await send(url, 'POST', '/v1/peers', from, { body: JSON.stringify(signed) });
  if (r.status !== 201) return r;
  return { token: (JSON.parse(r.body) as { token: string }).token, ms: c.ms + r.ms };
}
