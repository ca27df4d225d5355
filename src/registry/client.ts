// The peers' client of the registry HTTP API (SPEC section 3). Every call has a timeout; failures
// become CliErrors with the exit codes of SPEC section 2.
import { CliError, ExitCode } from '../cli/errors';

export interface Registration {
  name: string;
  token: string;
  ttl: number;
  observedAddress: string;
}

export interface PeerRecord {
  name: string;
  ip: string;
  port: number;
  addresses: string[];
  observedAddress: string;
  lastSeen: string | number;
}

const TIMEOUT_MS = 4_000;

export class RegistryClient {
  constructor(readonly url: string) {}

  register(body: { name: string; port: number; ip?: string; addresses?: string[] }, token?: string): Promise<Registration> {
    return this.call('POST', '/v1/peers', body, token) as Promise<Registration>;
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
  async list(): Promise<{ name: string; lastSeen: string | number }[]> {
    const peers: { name: string; lastSeen: string | number }[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 100; page++) {
      const q: string = cursor ? `?limit=1000&cursor=${encodeURIComponent(cursor)}` : '?limit=1000';
      const res = (await this.call('GET', `/v1/peers${q}`)) as { peers: { name: string; lastSeen: string | number }[]; next: string | null };
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
        throw new CliError(ExitCode.peerUnavailable, `unknown peer '${name}' (not registered, or offline)`);
      }
      throw err;
    }
  }

  private async call(method: string, path: string, body?: unknown, token?: string): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      const why = (err as Error).name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000} s` : ((err as { cause?: { code?: string; errors?: { code?: string }[] } }).cause?.code ?? (err as { cause?: { errors?: { code?: string }[] } }).cause?.errors?.[0]?.code ?? (err as Error).message);
      throw new CliError(ExitCode.registryUnavailable, `registry ${this.url} unreachable (${why})`, { cause: err });
    }
    const text = await res.text().catch(() => '');
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: judged by status below */
    }
    if (res.ok) return json;
    const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (res.status >= 500) {
      throw new CliError(ExitCode.registryUnavailable, `registry ${this.url} unhealthy (${res.status}${e?.message ? `: ${e.message}` : ''})`);
    }
    throw new RegistryHttpError(res.status, e?.code ?? 'error', e?.message ?? `HTTP ${res.status}`);
  }
}

/** A 4xx answer; callers decide what it means for them. */
export class RegistryHttpError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(status === 409 ? ExitCode.peerUnavailable : ExitCode.failed, `registry: ${message}`);
  }
}
