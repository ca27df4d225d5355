// How a requester reaches an owner (PROTOCOL.md 9.5, README "Across networks"), on its one UDP
// socket, the first path whose handshake completes winning:
//   1. direct: the registered address and the owner's LAN candidates;
//   2. punched: the registry introduces us (INTRO_REQUEST, its challenge, INTRO_RESPONSE) and
//      tells the owner, which punches towards us while we send INITs to all its candidates;
//   3. relayed: through the relay session the introduction offered.
import { randomInt } from 'node:crypto';
import { privateAddresses } from '../core/addresses';
import { P2pError } from '../core/errors';
import type { Remote, SecureConnection } from '../net/connection';
import type { Endpoint } from '../net/endpoint';
import type { PeerRecord } from '../registry/client';
import { decodeIntroChallenge, decodeIntroResponse, encodeIntroRequest, IntroStatus, MAX_HOST_CANDIDATES, RendezvousType, type Candidate, type IntroResponse } from '../wire/rendezvous';

export type Route = 'direct' | 'punched' | 'relayed';

/** A direct try is short when the owner can be introduced: behind a NAT it would only wait. */
const DIRECT_TRY_MS = [300];
/** INITs to every candidate every 50 ms while both NATs open, fresh ones each second, 3 s in all. */
const PUNCH_TRIES_MS = [1000, 1000, 1000];
const PUNCH_RESEND_MS = 50;
/** An introduction: up to 3 tries of request (and challenge), 500 ms each. */
const INTRO_TRIES = 3;
const INTRO_WAIT_MS = 500;

export interface Reached {
  conn: SecureConnection;
  route: Route;
}

/** Handshakes with the owner of `rec` by the first route that works; OFFLINE when none does. */
export async function reach(endpoint: Endpoint, rec: PeerRecord, o: { peerKey: Buffer; ownerName: string; signal?: AbortSignal }): Promise<Reached> {
  const hs = { peerKey: o.peerKey, ownerName: o.ownerName, ...(o.signal ? { signal: o.signal } : {}) };
  const direct = uniqueRemotes([{ address: rec.ip, port: rec.port }, ...rec.addresses.map((a) => ({ address: a, port: rec.port }))]);
  const rendezvous = rec.udp && rec.rendezvous ? { address: rec.rendezvous.ip, port: rec.rendezvous.port } : undefined;
  if (!rendezvous) return { conn: await endpoint.handshake(direct, hs), route: 'direct' };
  try {
    return { conn: await endpoint.handshake(direct, { ...hs, delaysMs: DIRECT_TRY_MS }), route: 'direct' };
  } catch (err) {
    if (!(err instanceof P2pError) || err.code !== 'OFFLINE') throw err;
  }
  const intro = await introduce(endpoint, rendezvous, o.ownerName, o.signal);
  if (!intro || intro.status !== IntroStatus.ok) {
    const why = !intro ? 'the registry did not answer an introduction' : intro.status === IntroStatus.noKeepalive ? 'it keeps no address alive at the registry' : 'the registry could not introduce us';
    throw new P2pError('OFFLINE', `peer '${o.ownerName}' is offline (no answer from ${describe(direct)}; ${why})`);
  }
  const punched = uniqueRemotes([...(intro.owner ? [toRemote(intro.owner)] : []), ...intro.hosts.map(toRemote), ...direct]);
  try {
    return { conn: await endpoint.handshake(punched, { ...hs, delaysMs: PUNCH_TRIES_MS, resendMs: PUNCH_RESEND_MS }), route: 'punched' };
  } catch (err) {
    if (!(err instanceof P2pError) || err.code !== 'OFFLINE' || intro.relaySession === 0) throw err;
  }
  const relay: Remote = { ...(intro.relay ? toRemote(intro.relay) : rendezvous), relay: intro.relaySession };
  endpoint.acceptRelay(relay, intro.relaySession);
  try {
    return { conn: await endpoint.handshake(relay, hs), route: 'relayed' };
  } catch (err) {
    if (err instanceof P2pError && err.code === 'OFFLINE') {
      throw new P2pError('OFFLINE', `peer '${o.ownerName}' is offline (no answer directly, punched through its NAT, or through the registry's relay)`);
    }
    throw err;
  }
}

/**
 * Asks the registry at `rendezvous` to introduce us to `owner`: the request, the registry's
 * challenge (proof that we receive at our address), the request again with its token, the answer.
 */
export async function introduce(endpoint: Endpoint, rendezvous: Remote, owner: string, signal?: AbortSignal): Promise<IntroResponse | null> {
  const requestId = randomInt(1, 0x1_0000_0000);
  const hosts = privateAddresses()
    .slice(0, MAX_HOST_CANDIDATES)
    .map((ip) => ({ ip, port: endpoint.port }));
  let token: Buffer = Buffer.alloc(0);
  let answer: IntroResponse | null = null;
  let wake: (() => void) | undefined;
  const fromRendezvous = (from: Remote) => from.relay === undefined && from.address === rendezvous.address && from.port === rendezvous.port;
  endpoint.onClear(RendezvousType.introChallenge, (_f, datagram, from) => {
    const c = decodeIntroChallenge(datagram);
    if (!c || c.requestId !== requestId || !fromRendezvous(from) || token.length > 0) return false;
    token = c.token;
    wake?.();
    return true;
  });
  endpoint.onClear(RendezvousType.introResponse, (_f, datagram, from) => {
    const r = decodeIntroResponse(datagram);
    if (!r || r.requestId !== requestId || !fromRendezvous(from)) return false;
    answer = r;
    wake?.();
    return true;
  });
  // The owner's punches reach us too: they only open its NAT, there is nothing to answer.
  endpoint.onClear(RendezvousType.punch, () => true);
  try {
    for (let i = 0; i < 2 * INTRO_TRIES && !answer && !signal?.aborted; i++) {
      endpoint.sendRaw(encodeIntroRequest({ requestId, owner, hosts, token }), rendezvous);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, INTRO_WAIT_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    endpoint.offClear(RendezvousType.introChallenge);
    endpoint.offClear(RendezvousType.introResponse);
  }
  return answer;
}

function toRemote(c: Candidate): Remote {
  return { address: c.ip, port: c.port };
}

function uniqueRemotes(list: Remote[]): Remote[] {
  const seen = new Set<string>();
  return list.filter((r) => {
    const k = `${r.address}|${r.port}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function describe(list: Remote[]): string {
  return list.map((r) => `${r.address}:${r.port}`).join(', ');
}
