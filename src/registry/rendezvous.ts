// The rendezvous on the registry's UDP socket (README.md, "Rendezvous"; frames in
// src/wire/rendezvous.ts): keepalives that record a peer's public UDP mapping, introductions of a
// requester to an owner, and the relay. Every answer goes to the datagram's source and is never
// larger than the datagram it answers (checked before sending); an INTRO goes only to an owner's
// authenticated mapping, once per token.
//
// With several registry processes on one Redis, the process that accepted an owner's last keepalive
// holds it: only its socket passes the owner's NAT filter, so it sends the INTRO and relays. Another
// process that gets an INTRO_REQUEST for that owner asks the holder through an IntroBus.
import { randomBytes } from 'node:crypto';
import { TokenBuckets } from '../core/token-bucket';
import {
  INTRO_REQUEST_BYTES, IntroStatus, RendezvousType, decodeIntroRequest, decodeKeepalive, decodeRelay, encodeIntro, encodeIntroChallenge,
  encodeIntroResponse, encodeKeepaliveAck, verifyRendezvousMac, type Candidate, type IntroResponse,
} from '../wire/rendezvous';
import { clientKey, judgeClaim } from './address-policy';
import type { EventLog } from './event-log';
import { INTRO_TOKEN_LIFETIME_MS, checkIntroToken, issueIntroToken } from './intro-token';
import type { RegistryLimits } from './limits';
import type { RegistryMetrics, RendezvousEvent } from './metrics';
import { isValidName, nameKey } from './names';
import type { RelaySessions } from './relay';
import type { Endpoint, Holder, PeerStore } from './store';

/** What the process holding an owner's keepalive is asked to do for one introduction. */
export interface IntroOrder {
  /** The owner's store key. */
  owner: string;
  /** The requester's source, as the process that checked its token saw it. */
  requester: Endpoint;
  /** The requester's host candidates (only its own or private addresses). */
  hosts: Candidate[];
  /** The token, hex: one INTRO per token and owner. */
  token: string;
  /** Whether to open a relay session. */
  relay: boolean;
  /** False when another process checked the requester: its port here is learnt from its first RELAY frame. */
  local: boolean;
}

export interface IntroResult {
  /** False when this process does not hold the owner's keepalive (any more). */
  held: boolean;
  /** 0 = none. */
  relaySession: number;
}

/** Carries introductions to the process holding an owner's keepalive (intro-bus.ts). */
export interface IntroBus {
  /** The holder's result, or null when it is gone or did not answer in time. */
  request(holderId: string, order: IntroOrder): Promise<IntroResult | null>;
  close(): Promise<void>;
}

export interface RendezvousOptions {
  store: PeerStore;
  /** A mapping lives this long after its last keepalive (the registration TTL). */
  ttlMs: number;
  /** This process: its id, and its advertised UDP address if it has one. */
  self: Holder;
  limits: Pick<RegistryLimits, 'keepalivesPerMinute' | 'introductionsPerMinute'>;
  /** Null with --no-relay. */
  relay: RelaySessions | null;
  metrics: RegistryMetrics;
  log: EventLog;
}

/** Entries a cache of introductions holds at most (oldest forgotten first). */
const MAX_REMEMBERED = 10_000;
/** How long the store's secret is used before it is read again. */
const SECRET_REFRESH_MS = 5_000;

/** A Map whose entries expire, bounded to MAX_REMEMBERED (insertion order = oldest first). */
class Remembered<V> {
  private readonly map = new Map<string, { value: V; until: number }>();
  get(key: string, now: number): V | undefined {
    const e = this.map.get(key);
    if (e && e.until <= now) this.map.delete(key);
    return e && e.until > now ? e.value : undefined;
  }
  set(key: string, value: V, until: number): void {
    this.map.delete(key);
    this.map.set(key, { value, until });
    if (this.map.size > MAX_REMEMBERED) this.map.delete(this.map.keys().next().value!);
  }
}

export class RendezvousService {
  bus: IntroBus | null = null;
  private send: (datagram: Buffer, to: Endpoint) => void = () => {};
  private readonly keepalives: TokenBuckets;
  private readonly introductions: TokenBuckets;
  /** Answers given to a token for an owner (a repeated request gets the same, free). */
  private readonly answered = new Remembered<Omit<IntroResponse, 'requestId'>>();
  /** Introductions this process made, by token and owner: one INTRO each. */
  private readonly introduced = new Remembered<IntroResult>();
  private secretCache: { value: Buffer; at: number } | null = null;

  constructor(private readonly o: RendezvousOptions) {
    const bucket = (perMinute: number) => new TokenBuckets({ perSecond: perMinute / 60, burst: perMinute, maxKeys: 100_000, now: () => Date.now() });
    this.keepalives = bucket(o.limits.keepalivesPerMinute);
    this.introductions = bucket(o.limits.introductionsPerMinute);
  }

  /** The socket's send function (the socket is bound after this service exists). */
  attach(send: (datagram: Buffer, to: Endpoint) => void): void {
    this.send = send;
  }

  private count(e: RendezvousEvent): void {
    this.o.metrics.countRendezvous(e);
  }

  /** One "PS" datagram from `from` (canonical address). Never throws; store failures are counted. */
  handle(datagram: Buffer, from: Endpoint): void {
    const type = datagram[3];
    if (type === RendezvousType.relay) return this.relayFrame(datagram, from);
    const work = type === RendezvousType.keepalive ? this.keepalive(datagram, from)
      : type === RendezvousType.introRequest ? this.introRequest(datagram, from)
      : null;
    if (!work) return this.count('dropped_unexpected');
    work.catch((err) => {
      this.count('store_error');
      this.o.log.error('rendezvous_store_error', err);
    });
  }

  /** Sends `answer` to `to` unless it is larger than the datagram it answers (never expected). */
  private answer(answer: Buffer, request: Buffer, to: Endpoint): void {
    if (answer.length > request.length) return this.count('dropped_answer_too_large');
    this.send(answer, to);
  }

  private async keepalive(datagram: Buffer, from: Endpoint): Promise<void> {
    const k = decodeKeepalive(datagram);
    if (!k || !isValidName(k.name)) return this.count('dropped_malformed');
    if (this.keepalives.take(clientKey(from.ip)) > 0) return this.count('keepalive_limited');
    const key = nameKey(k.name);
    const entry = await this.o.store.rendezvous(key);
    if (!entry) return this.count('keepalive_unknown');
    if (!verifyRendezvousMac(Buffer.from(entry.tokenHash, 'hex'), k)) return this.count('keepalive_bad_mac');
    if (k.sequence <= entry.sequence) return this.count('keepalive_stale');
    const now = Date.now();
    const outcome = await this.o.store.keepalive({ key, tokenHash: entry.tokenHash, sequence: k.sequence, udp: from, holder: this.o.self, ttlMs: this.o.ttlMs, now });
    if (outcome !== 'ok') return this.count(outcome === 'stale' ? 'keepalive_stale' : outcome === 'forbidden' ? 'keepalive_bad_mac' : 'keepalive_unknown');
    this.count('keepalive_accepted');
    this.o.relay?.moveOwner(key, from);
    this.answer(encodeKeepaliveAck({ sequence: k.sequence, observed: from }), datagram, from);
  }

  /** The store's secret, read again every few seconds (a Redis restarted empty makes a new one). */
  private async secret(now: number): Promise<Buffer> {
    if (!this.secretCache || now - this.secretCache.at > SECRET_REFRESH_MS) this.secretCache = { value: await this.o.store.secret(), at: now };
    return this.secretCache.value;
  }

  private async introRequest(datagram: Buffer, from: Endpoint): Promise<void> {
    const r = decodeIntroRequest(datagram);
    if (!r) return this.count('dropped_malformed');
    if (datagram.length < INTRO_REQUEST_BYTES) return this.count('intro_unpadded');
    const now = Date.now();
    const secret = await this.secret(now);
    if (!checkIntroToken(secret, r.token, from, now)) {
      this.count('intro_challenged');
      return this.answer(encodeIntroChallenge({ requestId: r.requestId, token: issueIntroToken(secret, from, now) }), datagram, from);
    }
    const token = r.token.toString('hex');
    const cacheKey = `${token} ${nameKey(r.owner)}`;
    const before = this.answered.get(cacheKey, now);
    if (before) {
      this.count('intro_repeated');
      return this.answer(encodeIntroResponse({ ...before, requestId: r.requestId }, datagram.length), datagram, from);
    }
    const outcome = await this.introduceFor(r.owner, token, from, r.hosts);
    this.count(outcome.status === IntroStatus.ok ? 'intro_ok' : outcome.status === IntroStatus.unknownOwner ? 'intro_unknown_owner' : outcome.status === IntroStatus.noKeepalive ? 'intro_no_keepalive' : 'intro_busy');
    if (outcome.status === IntroStatus.ok) this.answered.set(cacheKey, outcome, now + INTRO_TOKEN_LIFETIME_MS);
    this.answer(encodeIntroResponse({ ...outcome, requestId: r.requestId }, datagram.length), datagram, from);
  }

  /** The answer to a requester with a valid token: through the holder of the owner's keepalive. */
  private async introduceFor(owner: string, token: string, from: Endpoint, hosts: Candidate[]): Promise<Omit<IntroResponse, 'requestId'>> {
    const refused = (status: IntroStatus) => ({ status, owner: null, hosts: [], relaySession: 0, relay: null });
    if (!isValidName(owner)) return refused(IntroStatus.unknownOwner);
    if (this.introductions.take(clientKey(from.ip)) > 0) return refused(IntroStatus.busy);
    const entry = await this.o.store.rendezvous(nameKey(owner));
    if (!entry) return refused(IntroStatus.unknownOwner);
    const udp = entry.record.udp;
    if (!udp) return refused(IntroStatus.noKeepalive);
    const local = udp.holder.id === this.o.self.id;
    const order: IntroOrder = {
      owner: nameKey(owner), requester: from, hosts: hosts.filter((h) => ownAddress(h.ip, from.ip)), token,
      // Through another process, a relay needs the holder's address to give the requester.
      relay: local || udp.holder.address !== null, local,
    };
    let result: IntroResult | null;
    if (local) result = await this.introduce(order);
    else {
      if (!this.bus) return refused(IntroStatus.noKeepalive);
      this.count('intro_routed');
      result = await this.bus.request(udp.holder.id, order);
      if (!result) return refused(IntroStatus.busy);
    }
    if (!result.held) return refused(IntroStatus.noKeepalive);
    const record = entry.record;
    return {
      status: IntroStatus.ok,
      owner: udp.address,
      hosts: record.addresses.map((ip) => ({ ip, port: record.port })),
      relaySession: result.relaySession,
      // None with a session: the address the INTRO_REQUEST went to (this process).
      relay: result.relaySession !== 0 && !local ? udp.holder.address : result.relaySession !== 0 ? this.o.self.address : null,
    };
  }

  /**
   * The holder's part: sends the owner the INTRO (once per token and owner) from this socket, to
   * its kept-alive mapping, and opens the relay session. Also called through the IntroBus.
   */
  async introduce(order: IntroOrder): Promise<IntroResult> {
    const now = Date.now();
    const onceKey = `${order.token} ${order.owner}`;
    const before = this.introduced.get(onceKey, now);
    if (before) return before;
    const entry = await this.o.store.rendezvous(order.owner);
    const udp = entry?.record.udp;
    if (!entry || !udp || udp.holder.id !== this.o.self.id) return { held: false, relaySession: 0 };
    const relaySession = order.relay && this.o.relay
      ? this.o.relay.open(order.owner, udp.address, { ip: order.requester.ip, port: order.local ? order.requester.port : null })
      : 0;
    const intro = encodeIntro(
      { sequence: entry.sequence, requester: order.requester, hosts: order.hosts, relaySession, nonce: randomBytes(8) },
      Buffer.from(entry.tokenHash, 'hex'),
    );
    this.send(intro, udp.address);
    this.count('intro_sent');
    const result = { held: true, relaySession };
    this.introduced.set(onceKey, result, now + INTRO_TOKEN_LIFETIME_MS);
    return result;
  }

  private relayFrame(datagram: Buffer, from: Endpoint): void {
    const r = decodeRelay(datagram);
    if (!r) return this.count('dropped_malformed');
    if (!this.o.relay) return this.count('dropped_unexpected');
    const to = this.o.relay.forward(r.session, from, r.inner.length);
    if (to) this.send(datagram, to);
  }
}

/** A host candidate a requester may name: its own address, a private one, loopback from loopback. */
function ownAddress(candidate: string, source: string): boolean {
  const j = judgeClaim(candidate, source);
  return j.ok && j.address === candidate;
}
