// Prometheus text exposition (format 0.0.4) of the registry's counters.

export class RegistryMetrics {
  private readonly requests = new Map<string, number>();
  registrations = 0;
  renewals = 0;
  storeErrors = 0;

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
      '# HELP p2pshare_registry_renewals_total Registrations renewed by their owner.',
      '# TYPE p2pshare_registry_renewals_total counter',
      `p2pshare_registry_renewals_total ${this.renewals}`,
      '# HELP p2pshare_registry_store_errors_total Store operations that failed (store unreachable or erroring).',
      '# TYPE p2pshare_registry_store_errors_total counter',
      `p2pshare_registry_store_errors_total ${this.storeErrors}`,
      '# HELP p2pshare_registry_live_peers Peers currently registered (-1 when the store is unreachable).',
      '# TYPE p2pshare_registry_live_peers gauge',
      `p2pshare_registry_live_peers{store="${store}"} ${livePeers ?? -1}`,
    );
    return out.join('\n') + '\n';
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
