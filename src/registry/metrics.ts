// Prometheus text exposition (format 0.0.4) of the registry's counters.
import type { EventLog } from './event-log';
import type { ConnectionGuard, HttpLimits } from './http-guard';

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

export class RegistryMetrics {
  private readonly requests = new Map<string, number>();
  registrations = 0;
  reclaims = 0;
  storeErrors = 0;
  /** Null while no STUN server runs (then nothing STUN is rendered). */
  stun: Record<StunOutcome, number> | null = null;
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
    return out.join('\n') + '\n';
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
