// The registry's HTTP API (README.md, "The registry API with curl") on node:http, over any
// PeerStore, with the limits of README.md, "Limits" (http-guard.ts, rate-limit.ts, the stores).
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { clientKey } from './address-policy';
import { EventLog } from './event-log';
import { ClientGone, HttpError, readBody, sendJson, splitTarget } from './http';
import { DEFAULT_HTTP_TIMEOUTS, guardServer, type HttpLimits, type HttpTimeouts } from './http-guard';
import type { RegistryLimits } from './limits';
import { RegistryMetrics } from './metrics';
import { RateLimiter } from './rate-limit';
import { normalizeIp } from '../core/addresses';
import { isValidName, nameKey } from './names';
import {
  CHALLENGE_RANDOM_BYTES, CHALLENGE_TTL_MS, challengeExpiry, challengeId, checkChallenge, deriveRegistryKeys, issueChallenge,
  toBase64url, verifyRegistrationMac, type RegistryKeys,
} from './proof';
import type { Endpoint, Holder, PeerRecord, PeerStore } from './store';
import { bearerToken, checkKeyProof, checkListParams, checkRegistration, encodeCursor } from './validate';

export interface RegistryServerOptions {
  store: PeerStore;
  /** Seconds a registration lives after its last heartbeat. */
  ttl: number;
  /** How long a challenge stays valid (default 60 s; tests shorten it). */
  challengeTtlMs?: number;
  /** The limits (maxPeers and maxNamesPerIp are the store's: these only word its refusals). */
  limits: RegistryLimits;
  /** Deadlines and idle timeouts (DEFAULT_HTTP_TIMEOUTS unless tests say otherwise). */
  timeouts?: Partial<HttpTimeouts>;
  /** Where log lines go (default stderr), how long repeated events are summed, stacks or not. */
  log?: EventLog;
  /** This process's rendezvous once its UDP socket is bound; null without one. */
  rendezvous?: () => RendezvousInfo | null;
}

/** What the HTTP answers say of this process's rendezvous. */
export interface RendezvousInfo {
  self: Holder;
  /** The UDP port peers send to (the advertised one, else the one bound). */
  port: number;
  /** True when an introduction for an owner held by another process is routed to it (Redis). */
  routes: boolean;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function newToken(): string {
  return randomBytes(24).toString('base64url');
}

interface Route {
  label: string;
  allow: string[];
  params: { name?: string };
}

/** Maps a path to its route (or null for 404). Pure. */
export function matchRoute(path: string): Route | null {
  if (path === '/v1/peers') return { label: '/v1/peers', allow: ['GET', 'POST'], params: {} };
  if (path === '/v1/challenge') return { label: '/v1/challenge', allow: ['GET'], params: {} };
  if (path === '/healthz') return { label: '/healthz', allow: ['GET', 'HEAD'], params: {} };
  if (path === '/metrics') return { label: '/metrics', allow: ['GET'], params: {} };
  const m = /^\/v1\/peers\/([^/]+)(\/heartbeat)?$/.exec(path);
  if (!m) return null;
  let name: string;
  try {
    name = decodeURIComponent(m[1]!);
  } catch {
    return null;
  }
  return m[2]
    ? { label: '/v1/peers/{name}/heartbeat', allow: ['POST'], params: { name } }
    : { label: '/v1/peers/{name}', allow: ['GET', 'DELETE'], params: { name } };
}

function publicRecord(r: PeerRecord, rendezvous: Endpoint | null) {
  return {
    name: r.name,
    ip: r.ip,
    port: r.port,
    addresses: r.addresses,
    observedAddress: r.observedAddress,
    publicKey: r.publicKey,
    lastSeen: new Date(r.lastSeen).toISOString(),
    udp: r.udp ? r.udp.address : null,
    rendezvous,
  };
}

/**
 * Where a requester sends its INTRO_REQUEST for `r`: the holder's advertised address; else, when
 * this process can introduce it (it is the holder, or routes to the holder), this process's UDP
 * port at the address the HTTP request reached. Null without a live mapping.
 */
function rendezvousOf(r: PeerRecord, info: RendezvousInfo | null, localAddress: string | undefined): Endpoint | null {
  if (!r.udp) return null;
  if (r.udp.holder.address) return r.udp.holder.address;
  if (!info || !localAddress || (r.udp.holder.id !== info.self.id && !info.routes)) return null;
  return info.self.address ?? { ip: normalizeIp(localAddress), port: info.port };
}

/** Whole seconds for Retry-After, at least 1. */
function retrySeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

export function createRegistryServer(opts: RegistryServerOptions): { server: Server; metrics: RegistryMetrics; close(): void } {
  const { store, limits } = opts;
  const ttlMs = opts.ttl * 1000;
  const challengeTtlMs = opts.challengeTtlMs ?? CHALLENGE_TTL_MS;
  const log = opts.log ?? new EventLog();
  const metrics = new RegistryMetrics(log);
  const registrations = new RateLimiter(limits.registrationsPerMinute);
  const challenges = new RateLimiter(limits.challengesPerMinute);
  const forgetter = setInterval(() => {
    registrations.forget();
    challenges.forget();
  }, 60_000).unref();
  let derived: { secret: string; keys: RegistryKeys } | undefined;

  /** `{port}` of this process's UDP socket, where peers keep alive; null without one. */
  function rendezvousPort(): { port: number } | null {
    const info = opts.rendezvous?.();
    return info ? { port: info.port } : null;
  }

  /** Takes a token of `bucket` for the client, or refuses with 429 and when to come back. */
  function charge(bucket: RateLimiter, client: string, what: string, reason: string): void {
    const waitMs = bucket.take(client);
    if (waitMs === 0) return;
    log.note(reason, `refused ${what} from ${client}: over ${bucket.perMinute} a minute`);
    throw new HttpError(429, 'rate_limited', `too many ${what} from ${client}: at most ${bucket.perMinute} a minute; retry in ${retrySeconds(waitMs)} s`, {
      'Retry-After': retrySeconds(waitMs),
    });
  }

  /** Store calls go through here so a failing backend becomes 503 and is counted. */
  async function storeCall<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      metrics.storeErrors++;
      throw new HttpError(503, 'store_unavailable', `the ${store.kind} store is unavailable: ${(err as Error).message}`);
    }
  }

  /** The keys of the store's current secret (derived again only when the secret changed). */
  async function registryKeys(): Promise<RegistryKeys> {
    const secret = await storeCall(() => store.secret());
    const hex = secret.toString('hex');
    if (derived?.secret !== hex) derived = { secret: hex, keys: deriveRegistryKeys(secret) };
    return derived.keys;
  }

  function requireToken(req: IncomingMessage): string {
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      throw new HttpError(401, 'token_required', 'send the registration token as "Authorization: Bearer <token>"', {
        'WWW-Authenticate': 'Bearer',
      });
    }
    return token;
  }

  function ownerOutcome(outcome: 'ok' | 'not_found' | 'forbidden', name: string): void {
    if (outcome === 'not_found') throw new HttpError(404, 'peer_not_found', `no peer named '${name}' is registered`);
    if (outcome === 'forbidden') throw new HttpError(403, 'wrong_token', `the token does not own '${name}'`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, route: Route, query: string): Promise<number> {
    const method = req.method ?? 'GET';
    const name = route.params.name;
    switch (`${method} ${route.label}`) {
      case 'POST /v1/peers': {
        const observed = normalizeIp(req.socket.remoteAddress ?? '0.0.0.0');
        const client = clientKey(observed);
        charge(registrations, client, 'registrations', 'registrations_per_ip');
        const raw = await readBody(req);
        let body: unknown;
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          throw new HttpError(400, 'malformed_json', 'the body is not valid JSON');
        }
        const checked = checkRegistration(body, observed);
        if (!checked.ok) throw new HttpError(400, 'addressRefused' in checked ? 'address_not_allowed' : 'invalid_registration', checked.message);
        const reg = checked.value;
        const proof = checkKeyProof(body);
        if (!proof.ok) throw new HttpError(400, proof.missing ? 'key_required' : 'invalid_registration', proof.message);
        const { publicKey, challenge, mac, signed } = proof.value;
        const keys = await registryKeys();
        const now = Date.now();
        const fresh = checkChallenge(keys.challengeKey, challenge, now);
        if (fresh !== 'ok') {
          throw new HttpError(401, 'challenge_expired', fresh === 'expired'
            ? 'the challenge has expired; get a new one from GET /v1/challenge'
            : 'the challenge was not issued by this registry; get one from GET /v1/challenge');
        }
        const verdict = verifyRegistrationMac(keys.x25519, publicKey, challenge, signed, mac);
        if (verdict === 'bad_key') throw new HttpError(400, 'invalid_registration', 'publicKey is not a usable X25519 public key');
        if (!verdict) throw new HttpError(403, 'invalid_proof', 'the proof does not match this registration and publicKey');
        const token = newToken();
        const result = await storeCall(() =>
          store.register({
            record: { name: reg.name, ip: reg.ip, port: reg.port, addresses: reg.addresses, observedAddress: observed, publicKey: signed.publicKey, lastSeen: now },
            newTokenHash: hashToken(token),
            ttlMs,
            challenge: { id: challengeId(challenge), expiresAt: challengeExpiry(challenge) },
          }),
        );
        if (result.outcome === 'challenge_used') {
          throw new HttpError(401, 'challenge_expired', 'the challenge was already used; get a new one from GET /v1/challenge');
        }
        if (result.outcome === 'taken') throw new HttpError(409, 'name_taken', `the name '${reg.name}' is taken`);
        if (result.outcome === 'client_full') {
          log.note('names_per_ip', `refused a registration from ${client}: it holds ${limits.maxNamesPerIp} live names`);
          throw new HttpError(429, 'too_many_names', `${client} already holds ${limits.maxNamesPerIp} live names, the most per address; one expires in ${retrySeconds(result.retryAfterMs)} s`, {
            'Retry-After': retrySeconds(result.retryAfterMs),
          });
        }
        if (result.outcome === 'full') {
          log.note('registry_full', `refused a new name: the registry holds its maximum of ${limits.maxPeers} peers`);
          throw new HttpError(503, 'registry_full', `the registry holds its maximum of ${limits.maxPeers} peers; try again later`, { 'Retry-After': retrySeconds(ttlMs) });
        }
        if (result.outcome === 'created') metrics.registrations++;
        else metrics.reclaims++;
        sendJson(res, 201, { name: result.name, token, ttl: opts.ttl, observedAddress: observed, rendezvous: rendezvousPort() }, { Location: `/v1/peers/${encodeURIComponent(result.name)}` });
        return 201;
      }
      case 'GET /v1/challenge': {
        charge(challenges, clientKey(normalizeIp(req.socket.remoteAddress ?? '0.0.0.0')), 'challenges', 'challenges_per_ip');
        const keys = await registryKeys();
        const expiresAt = Date.now() + challengeTtlMs;
        const challenge = issueChallenge(keys.challengeKey, expiresAt, randomBytes(CHALLENGE_RANDOM_BYTES));
        sendJson(res, 200, { challenge: toBase64url(challenge), registryKey: toBase64url(keys.x25519.publicKey), expires: new Date(expiresAt).toISOString(), rendezvous: rendezvousPort() });
        return 200;
      }
      case 'POST /v1/peers/{name}/heartbeat': {
        const token = requireToken(req);
        if (!isValidName(name)) ownerOutcome('not_found', String(name));
        ownerOutcome(await storeCall(() => store.heartbeat(nameKey(name!), hashToken(token), ttlMs, Date.now())), name!);
        sendJson(res, 200, { ttl: opts.ttl });
        return 200;
      }
      case 'DELETE /v1/peers/{name}': {
        const token = requireToken(req);
        if (!isValidName(name)) ownerOutcome('not_found', String(name));
        ownerOutcome(await storeCall(() => store.remove(nameKey(name!), hashToken(token))), name!);
        sendJson(res, 204, undefined);
        return 204;
      }
      case 'GET /v1/peers/{name}': {
        const rec = isValidName(name) ? await storeCall(() => store.get(nameKey(name))) : null;
        if (!rec) ownerOutcome('not_found', String(name));
        sendJson(res, 200, publicRecord(rec!, rendezvousOf(rec!, opts.rendezvous?.() ?? null, req.socket.localAddress)));
        return 200;
      }
      case 'GET /v1/peers': {
        const checked = checkListParams(new URLSearchParams(query));
        if (!checked.ok) throw new HttpError(400, 'invalid_parameters', checked.message);
        const page = await storeCall(() => store.list(checked.value));
        sendJson(res, 200, {
          peers: page.peers.map((p) => ({ name: p.name, publicKey: p.publicKey, lastSeen: new Date(p.lastSeen).toISOString() })),
          next: page.after === null ? null : encodeCursor(page.after),
        });
        return 200;
      }
      case 'GET /healthz':
      case 'HEAD /healthz': {
        await storeCall(() => store.ping());
        sendJson(res, 200, { status: 'ok', store: store.kind });
        return 200;
      }
      case 'GET /metrics': {
        let live: number | null = null;
        try {
          live = await store.count();
        } catch {
          metrics.storeErrors++;
        }
        const text = metrics.render(live, store.kind);
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
        return 200;
      }
      default:
        throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${route.label}`, { Allow: route.allow.join(', ') });
    }
  }

  const timeouts = { ...DEFAULT_HTTP_TIMEOUTS, ...opts.timeouts };
  // Node checks the header and request deadlines every connectionsCheckingInterval (30 s by default).
  const server = createServer({ connectionsCheckingInterval: timeouts.checkIntervalMs }, async (req, res) => {
    const method = req.method ?? 'GET';
    let label = 'unknown';
    let status = 500;
    // Marked here rather than by a second 'request' listener and a 'close' one per answer.
    guard.busy.add(req.socket);
    try {
      const { path, query } = splitTarget(req.url ?? '/');
      const route = matchRoute(path);
      if (!route) throw new HttpError(404, 'not_found', `no such path: ${path.slice(0, 100)}`);
      label = route.label;
      status = await handle(req, res, route, query);
    } catch (err) {
      if (err instanceof ClientGone) {
        // Counted and logged as one reason, not answered: nobody is there to read it.
        if (!guard.cut.has(req.socket)) log.note('aborted', `a client from ${req.socket.remoteAddress ?? '?'} went away in the middle of a request (its body unfinished)`);
        res.destroy();
        return;
      }
      const e = err instanceof HttpError ? err : new HttpError(500, 'internal_error', 'internal error');
      if (!(err instanceof HttpError)) log.error('internal_error', err);
      status = e.status;
      // After a refused body the rest of it is unread: close the connection rather than drain it.
      const headers = (e.status === 413 || e.status === 429) && method === 'POST' ? { ...e.headers, Connection: 'close' } : e.headers;
      if (!res.headersSent) sendJson(res, e.status, { error: { code: e.code, message: e.message } }, headers);
      else res.destroy();
    } finally {
      guard.busy.delete(req.socket);
      if (res.headersSent) metrics.countRequest(method.slice(0, 10), label, status);
    }
  });
  // A client may send its request and shut down its side (`nc -N`, a one-shot script): its
  // answer must still go out. By default Node aborts the requests under way at that FIN, which
  // loses every answer that waits on the store (Redis), and closes at once; this way the last
  // answer ends the connection instead. Idle and abusive sockets are the guard's, as before.
  // (The switch is node:http's own, untyped: Server sets it false; test/registry/api.test.ts
  // catches a Node that drops it.)
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  const httpLimits: HttpLimits = { ...timeouts, maxConnections: limits.maxConnections, maxConnectionsPerIp: limits.maxConnectionsPerIp };
  const guard = guardServer(server, httpLimits, log);
  metrics.connections = { guard, limits: httpLimits };
  return {
    server,
    metrics,
    close() {
      clearInterval(forgetter);
      log.close();
    },
  };
}
