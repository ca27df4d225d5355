// The peers' client of the registry HTTP API (README "The registry API with curl"). Every call has a
// timeout; failures become P2pErrors (REGISTRY_UNAVAILABLE, UNKNOWN_PEER, ...).
import http from 'node:http';
import type https from 'node:https';
import { P2pError } from '../core/errors';
import type { PrivateKey } from '../core/x25519';
import { signRegistration, type RegistrationFields } from './proof';

export interface Registration {
  name: string;
  token: string;
  ttl: number;
  observedAddress: string;
  /** The UDP port of the registry process that answered: keep alive towards the registry host at it (null or absent: none). */
  rendezvous?: { port: number } | null;
}

/** A UDP address in a registry answer. */
export interface UdpAddress {
  ip: string;
  port: number;
}

export interface PeerRecord {
  name: string;
  ip: string;
  port: number;
  addresses: string[];
  observedAddress: string;
  /** The X25519 key (base64url) the name is bound to. */
  publicKey: string;
  lastSeen: string | number;
  /** The owner's public UDP mapping (the source of its last keepalive); null when it keeps none alive. */
  udp?: UdpAddress | null;
  /** Where to send INTRO_REQUESTs for this owner (the registry process holding its keepalive); null: none. */
  rendezvous?: UdpAddress | null;
}

export interface ListedPeer {
  name: string;
  publicKey: string;
  lastSeen: string | number;
}

const TIMEOUT_MS = 4_000;

export class RegistryClient {
  constructor(readonly url: string) {}

  /**
   * Registers `body` bound to `identity`'s public key, proving possession of it over a fresh
   * challenge; when the challenge expired on the way (401 challenge_expired), once more.
   */
  async register(body: RegistrationFields, identity: PrivateKey): Promise<Registration> {
    for (let attempt = 1; ; attempt++) {
      const signed = signRegistration(identity, await this.call('GET', '/v1/challenge'), body);
      if (!signed) throw new P2pError('REGISTRY_UNAVAILABLE', `registry ${this.url} sent a malformed challenge`);
      try {
        return (await this.call('POST', '/v1/peers', signed)) as Registration;
      } catch (err) {
        if (attempt === 1 && err instanceof RegistryHttpError && err.registryCode === 'challenge_expired') continue;
        throw err;
      }
    }
  }

  /** Resolves false when the registry no longer knows the name (expired, or registry restarted). */
  async heartbeat(name: string, token: string): Promise<boolean> {
    try {
      await this.call('POST', `/v1/peers/${encodeURIComponent(name)}/heartbeat`, undefined, token);
      return true;
    } catch (err) {
      if (err instanceof RegistryHttpError && err.status === 404) return false;
      throw err;
    }
  }

  async unregister(name: string, token: string): Promise<void> {
    await this.call('DELETE', `/v1/peers/${encodeURIComponent(name)}`, undefined, token);
  }

  /** All peers, following the pagination cursor (bounded to 100 pages). */
  async list(): Promise<ListedPeer[]> {
    const peers: ListedPeer[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 100; page++) {
      const q: string = cursor ? `?limit=1000&cursor=${encodeURIComponent(cursor)}` : '?limit=1000';
      const res = (await this.call('GET', `/v1/peers${q}`)) as { peers: ListedPeer[]; next: string | null };
      peers.push(...res.peers);
      cursor = res.next;
      if (!cursor) break;
    }
    return peers;
  }

  async lookup(name: string): Promise<PeerRecord> {
    try {
      return (await this.call('GET', `/v1/peers/${encodeURIComponent(name)}`)) as PeerRecord;
    } catch (err) {
      if (err instanceof RegistryHttpError && (err.status === 404 || err.status === 400)) {
        throw new P2pError('UNKNOWN_PEER', `unknown peer '${name}' (not registered, or offline)`);
      }
      throw err;
    }
  }

  private async call(method: string, path: string, body?: unknown, token?: string): Promise<unknown> {
    let res: { status: number; text: string } | undefined;
    for (let attempt = 1; !res; attempt++) {
      try {
        res = await httpRequest(new URL(path, this.url), method, body === undefined ? undefined : JSON.stringify(body), token);
      } catch (err) {
        // The registry resets a connection whose request is not complete within about a second
        // (README "Limits"): a process starved of CPU may be that slow once; it asks once more.
        if (attempt === 1 && (err as NodeJS.ErrnoException).code === 'ECONNRESET') continue;
        const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        throw new P2pError('REGISTRY_UNAVAILABLE', `registry ${this.url} unreachable (${why})`, { cause: err });
      }
    }
    let json: unknown = undefined;
    try {
      json = res.text ? JSON.parse(res.text) : undefined;
    } catch {
      /* not JSON: judged by status below */
    }
    if (res.status >= 200 && res.status < 300) return json;
    const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (res.status >= 500) {
      throw new P2pError('REGISTRY_UNAVAILABLE', `registry ${this.url} unhealthy (${res.status}${e?.message ? `: ${e.message}` : ''})`);
    }
    throw new RegistryHttpError(res.status, e?.code ?? 'error', e?.message ?? `HTTP ${res.status}`);
  }
}

/** The largest answer read: a page of 1000 peers is about 60 KB. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * One HTTP exchange with node:http, not fetch(): fetch refuses a list of "bad ports" (6665-6669,
 * 10080, ...) that a registry may well use, and reads an answer of any size into memory.
 * Settles within TIMEOUT_MS whatever the server does.
 */
function httpRequest(url: URL, method: string, body: string | undefined, token: string | undefined): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    if (token) headers.authorization = `Bearer ${token}`;
    let settled = false;
    const settle = (err: Error | null, value?: { status: number; text: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value!);
    };
    // node:https (and tls with it) is required only for an https registry: it costs a plain one ~20 ms of start-up.
    const req = (url.protocol === 'https:' ? (require('node:https') as typeof https) : http).request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) return settle(new Error(`answer too large (over ${MAX_ANSWER_BYTES / 1024 / 1024} MiB)`));
        chunks.push(chunk);
      });
      res.on('end', () => settle(null, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => settle(err));
      res.on('aborted', () => settle(new Error('connection closed mid-answer')));
    });
    const timer = setTimeout(() => settle(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    req.on('error', (err) => settle(err));
    req.end(body);
  });
}

/** A 4xx answer; callers decide what it means for them. `registryCode` is the API's own error code. */
export class RegistryHttpError extends P2pError {
  constructor(
    readonly status: number,
    readonly registryCode: string,
    message: string,
  ) {
    super(status === 409 ? 'NAME_TAKEN' : 'FAILED', `registry: ${message}`);
  }
}
