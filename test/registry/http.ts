// A small HTTP client for the registry tests (node:http, so nothing hides status codes or bodies),
// and registrations signed with a key over a fresh challenge, as every registration must be.
import { Agent, request } from 'node:http';
import { PrivateKey } from '../../src/core/x25519';
import { signRegistration, type RegistrationFields } from '../../src/registry/proof';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

export const keepAlive = new Agent({ keepAlive: true, maxSockets: 16 });

export function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  opts: { raw?: boolean; agent?: Agent; localAddress?: string; timeoutMs?: number } = {},
): Promise<Reply> {
  const url = new URL(path, base);
  const payload = body === undefined ? undefined : opts.raw ? Buffer.from(body as string | Buffer) : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent: opts.agent ?? false,
        headers: { ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}), ...headers },
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

type CallOptions = NonNullable<Parameters<typeof call>[5]>;

/** A POST /v1/peers body for `fields` bound to `key`, proven over a challenge fetched from `base`. */
export async function signedBody(base: string, fields: RegistrationFields, key: PrivateKey, opts: CallOptions = {}) {
  const ch = await call(base, 'GET', '/v1/challenge', undefined, {}, opts);
  if (ch.status !== 200) throw new Error(`GET /v1/challenge: ${ch.status} ${ch.text}`);
  const body = signRegistration(key, ch.json, fields);
  if (!body) throw new Error(`unusable challenge: ${ch.text}`);
  return body;
}

/** Registers `fields` with `key` (a new one by default): the reply, and the key for later reclaims. */
export async function register(base: string, fields: RegistrationFields, key = PrivateKey.generate(), opts: CallOptions = {}): Promise<Reply & { key: PrivateKey }> {
  const body = await signedBody(base, fields, key, opts);
  return { ...(await call(base, 'POST', '/v1/peers', body, {}, opts)), key };
}
