// Every limit of the registry and its default, in one place (README.md, "Limits"; the flags of
// `serve-registry`). A client is a source IPv4 address or IPv6 /64 (address-policy.ts).
import { ASSUMED_FILE_LIMIT, connectionCapFor, readFileLimit } from './fd-limit';

export interface RegistryLimits {
  /** Live registrations in all (each store; with Redis, shared by every registry on it). */
  maxPeers: number;
  /** Live names registered from one client (with Redis, counted across registries). */
  maxNamesPerIp: number;
  /** POST /v1/peers per client per minute (token bucket, burst as large); 0 = unlimited. */
  registrationsPerMinute: number;
  /** GET /v1/challenge per client per minute (token bucket, burst as large); 0 = unlimited. */
  challengesPerMinute: number;
  /** Connections held at once, in all: by default sized below the file-descriptor limit. */
  maxConnections: number;
  /** Connections held at once per client. */
  maxConnectionsPerIp: number;
  /** KEEPALIVEs per client per minute at the UDP port (token bucket, burst as large). */
  keepalivesPerMinute: number;
  /** Introductions (INTRO_REQUESTs with a valid token) per client per minute (burst as large). */
  introductionsPerMinute: number;
}

export const DEFAULT_MAX_PEERS = 100_000;

export const DEFAULT_LIMITS: Omit<RegistryLimits, 'maxConnections'> = {
  maxPeers: DEFAULT_MAX_PEERS,
  // A NAT with many users shows one address: generous per client, small against maxPeers.
  maxNamesPerIp: 64,
  registrationsPerMinute: 60,
  // Every registration needs a challenge, and a client fetches a second one when the first expired.
  challengesPerMinute: 120,
  maxConnectionsPerIp: 64,
  // 64 names behind one NAT, each keeping alive every 20 s, is 192 a minute.
  keepalivesPerMinute: 600,
  introductionsPerMinute: 10,
};

/** The connection cap that fits this process's soft file-descriptor limit. */
export function defaultMaxConnections(): { cap: number; softLimit: number } {
  const soft = readFileLimit()?.soft ?? ASSUMED_FILE_LIMIT;
  return { cap: connectionCapFor(soft), softLimit: soft };
}

/** `partial` completed with the defaults; an explicit maxConnections above the fd-safe cap is lowered to it. */
export function resolveLimits(partial: Partial<RegistryLimits> = {}): { limits: RegistryLimits; connectionsLowered: boolean; softFileLimit: number } {
  const { cap, softLimit } = defaultMaxConnections();
  const wanted = partial.maxConnections ?? cap;
  const given = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  return {
    limits: { ...DEFAULT_LIMITS, ...given, maxConnections: Math.min(wanted, cap) },
    connectionsLowered: wanted > cap,
    softFileLimit: softLimit,
  };
}
