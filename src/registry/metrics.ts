// Prometheus text exposition (format 0.0.4) of the registry's counters.
import type { EventLog } from './event-log';
import type { ConnectionGuard, HttpLimits } from './http-guard';
import { RELAY_EVENTS, type RelayEvent, type RelaySessions } from './relay';

/** Reasons of p2pshare_registry_events_total shown from zero (others appear once they happen). */
export const EVENT_REASONS = [
  'header_timeout', 'body_timeout', 'bad_request', 'aborted',
  'connections_per_ip', 'max_connections', 'connection_evicted',
  'registrations_per_ip', 'challenges_per_ip', 'names_per_ip', 'registry_full', 'internal_error',
] as const;

/** What became of one datagram at the STUN port. */
export const STUN_OUTCOMES = [
  'answered',
  'unknown_attributes',
  'dropped_oversize',
  'dropped_malformed',
  'dropped_fingerprint',
  'dropped_not_binding_request',
  'send_failed',
] as const;
export type StunOutcome = (typeof STUN_OUTCOMES)[number];

/** What became of one rendezvous datagram ("PS" frames at the UDP port) or introduction. */
export const RENDEZVOUS_EVENTS = [
  'keepalive_accepted', 'keepalive_bad_mac', 'keepalive_stale', 'keepalive_unknown', 'keepalive_limited',
  'intro_challenged', 'intro_ok', 'intro_repeated', 'intro_unknown_owner', 'intro_no_keepalive', 'intro_busy',
  'intro_sent', 'intro_routed', 'intro_unpadded',
  'dropped_malformed', 'dropped_unexpected', 'dropped_answer_too_large', 'store_error', 'send_failed',
] as const;
export type RendezvousEvent = (typeof RENDEZVOUS_EVENTS)[number];

const zeros = <K extends string>(keys: readonly K[]): Record<K, number> => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

export class RegistryMetrics {
  private readonly requests = new Map<string, number>();
  registrations = 0;
  reclaims = 0;
  storeErrors = 0;
  /** Null while no STUN server runs (then nothing STUN is rendered). */
  stun: Record<StunOutcome, number> | null = null;
  /** Null while no UDP socket runs (then nothing rendezvous is rendered). */
  rendezvous: Record<RendezvousEvent, number> | null = null;
  /** Null while relaying is off. */
  relay: { events: Record<RelayEvent, number>; sessions: RelaySessions } | null = null;
  /** The HTTP server's connections and their caps, once it has them. */
  connections: { guard: ConnectionGuard; limits: Pick<HttpLimits, 'maxConnections' | 'maxConnectionsPerIp'> } | null = null;

  constructor(private readonly log: EventLog | null = null) {}

  /** Called when a STUN server starts, so /metrics shows its counters from zero. */
  enableStun(): Record<StunOutcome, number> {
    return (this.stun ??= Object.fromEntries(STUN_OUTCOMES.map((o) => [o, 0])) as Record<StunOutcome, number>);
  }

  countStun(outcome: StunOutcome): void {
    this.enableStun()[outcome]++;
  }

  enableRendezvous(): void {
    this.rendezvous ??= zeros(RENDEZVOUS_EVENTS);
  }

  countRendezvous(e: RendezvousEvent): void {
    if (this.rendezvous) this.rendezvous[e]++;
  }

  enableRelay(sessions: RelaySessions): void {
    this.relay = { events: zeros(RELAY_EVENTS), sessions };
  }

  countRelay(e: RelayEvent): void {
    if (this.relay) this.relay.events[e]++;
  }

  countRequest(method: string, route: string, status: number): void {
    const key = `${method}\u0000${route}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** `livePeers` is null when the store could not be asked. */
  render(livePeers: number | null, store: string): string {
    const out: string[] = [
      '# HELP p2pshare_registry_requests_total HTTP requests answered, by method, route and status.',
      '# TYPE p2pshare_registry_requests_total counter',
    ];
    for (const [key, n] of [...this.requests].sort()) {
      const [method, route, status] = key.split('\u0000');
      out.push(`p2pshare_registry_requests_total{method="${method}",route="${escapeLabel(route!)}",status="${status}"} ${n}`);
    }
    out.push(
      '# HELP p2pshare_registry_registrations_total New registrations created.',
      '# TYPE p2pshare_registry_registrations_total counter',
      `p2pshare_registry_registrations_total ${this.registrations}`,
      '# HELP p2pshare_registry_reclaims_total Live registrations taken over by a new registration with the same key.',
      '# TYPE p2pshare_registry_reclaims_total counter',
      `p2pshare_registry_reclaims_total ${this.reclaims}`,
      '# HELP p2pshare_registry_store_errors_total Store operations that failed (store unreachable or erroring).',
      '# TYPE p2pshare_registry_store_errors_total counter',
      `p2pshare_registry_store_errors_total ${this.storeErrors}`,
      '# HELP p2pshare_registry_live_peers Peers currently registered (-1 when the store is unreachable).',
      '# TYPE p2pshare_registry_live_peers gauge',
      `p2pshare_registry_live_peers{store="${store}"} ${livePeers ?? -1}`,
    );
    if (this.log) {
      out.push(
        '# HELP p2pshare_registry_events_total Connections refused or closed and requests refused or failed, by reason (logged at most once per reason per minute).',
        '# TYPE p2pshare_registry_events_total counter',
      );
      const reasons = new Set<string>([...EVENT_REASONS, ...this.log.counts.keys()]);
      for (const r of [...reasons].sort()) out.push(`p2pshare_registry_events_total{reason="${escapeLabel(r)}"} ${this.log.counts.get(r) ?? 0}`);
    }
    if (this.connections) {
      const { guard, limits } = this.connections;
      out.push(
        '# HELP p2pshare_registry_connections_open HTTP connections open now.',
        '# TYPE p2pshare_registry_connections_open gauge',
        `p2pshare_registry_connections_open ${guard.open}`,
        '# HELP p2pshare_registry_connections_max The most HTTP connections held at once, in all and per client.',
        '# TYPE p2pshare_registry_connections_max gauge',
        `p2pshare_registry_connections_max{scope="all"} ${limits.maxConnections}`,
        `p2pshare_registry_connections_max{scope="per_ip"} ${limits.maxConnectionsPerIp}`,
      );
    }
    if (this.stun) {
      out.push(
        '# HELP p2pshare_registry_stun_datagrams_total Datagrams at the STUN port, by what became of them.',
        '# TYPE p2pshare_registry_stun_datagrams_total counter',
        ...STUN_OUTCOMES.map((o) => `p2pshare_registry_stun_datagrams_total{outcome="${o}"} ${this.stun![o]}`),
      );
    }
    if (this.rendezvous) {
      out.push(
        '# HELP p2pshare_registry_rendezvous_total Keepalives and introductions at the UDP port, by what became of them.',
        '# TYPE p2pshare_registry_rendezvous_total counter',
        ...RENDEZVOUS_EVENTS.map((e) => `p2pshare_registry_rendezvous_total{event="${e}"} ${this.rendezvous![e]}`),
        '# HELP p2pshare_registry_relay_enabled 1 when this registry relays, 0 with --no-relay.',
        '# TYPE p2pshare_registry_relay_enabled gauge',
        `p2pshare_registry_relay_enabled ${this.relay ? 1 : 0}`,
      );
    }
    if (this.relay) {
      const { events, sessions } = this.relay;
      const l = sessions.limits;
      out.push(
        '# HELP p2pshare_registry_relay_total Relay sessions and RELAY frames, by what became of them.',
        '# TYPE p2pshare_registry_relay_total counter',
        ...RELAY_EVENTS.map((e) => `p2pshare_registry_relay_total{event="${e}"} ${events[e]}`),
        '# HELP p2pshare_registry_relay_bytes_total Bytes of relayed datagrams forwarded.',
        '# TYPE p2pshare_registry_relay_bytes_total counter',
        `p2pshare_registry_relay_bytes_total ${sessions.bytesForwarded}`,
        '# HELP p2pshare_registry_relay_sessions Relay sessions held now.',
        '# TYPE p2pshare_registry_relay_sessions gauge',
        `p2pshare_registry_relay_sessions ${sessions.size}`,
        '# HELP p2pshare_registry_relay_limit The relay caps: sessions, bytes a second per session and in all, bytes per session, idle seconds.',
        '# TYPE p2pshare_registry_relay_limit gauge',
        `p2pshare_registry_relay_limit{cap="sessions"} ${l.maxSessions}`,
        `p2pshare_registry_relay_limit{cap="session_bytes_per_second"} ${l.sessionBytesPerSecond}`,
        `p2pshare_registry_relay_limit{cap="session_bytes"} ${l.sessionBytes}`,
        `p2pshare_registry_relay_limit{cap="total_bytes_per_second"} ${l.totalBytesPerSecond}`,
        `p2pshare_registry_relay_limit{cap="idle_seconds"} ${l.idleMs / 1000}`,
      );
    }
    return out.join('\n') + '\n';
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
