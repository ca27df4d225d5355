// The one interface both stores (memory, Redis) implement. Records are keyed by nameKey(name).

export interface PeerRecord {
  /** The name as first registered (display form). */
  name: string;
  ip: string;
  port: number;
  addresses: string[];
  observedAddress: string;
  /** The X25519 public key (base64url) the name is bound to. */
  publicKey: string;
  /** Milliseconds since the epoch of the registration or last heartbeat. */
  lastSeen: number;
  /** The peer's kept-alive UDP mapping while it is live (README "Rendezvous"); absent otherwise. */
  udp?: KeptAlive;
}

/** A UDP transport address. */
export interface Endpoint {
  ip: string;
  port: number;
}

/** The registry process holding a keepalive: its id, and its advertised UDP address if it has one. */
export interface Holder {
  id: string;
  address: Endpoint | null;
}

/** A mapping kept alive: the source of the last accepted KEEPALIVE, and the process it reached. */
export interface KeptAlive {
  address: Endpoint;
  holder: Holder;
}

/** What the rendezvous needs of a registration: the key of its macs and its last keepalive. */
export interface RendezvousEntry {
  record: PeerRecord;
  /** sha256 of the registration's token, hex (the key of its macs, as raw bytes). */
  tokenHash: string;
  /** The highest keepalive sequence accepted under this token (0: none yet). */
  sequence: number;
}

export interface KeepaliveInput {
  key: string;
  /** The hash whose mac the keepalive carried: refused unless it is still the registration's. */
  tokenHash: string;
  sequence: number;
  udp: Endpoint;
  holder: Holder;
  /** The mapping lives this long after the keepalive (never beyond the registration). */
  ttlMs: number;
  now: number;
}

/** stale: the sequence is not above the last accepted one (a replay, or one overtaken). */
export type KeepaliveResult = 'ok' | 'not_found' | 'forbidden' | 'stale';

export interface RegisterInput {
  record: PeerRecord;
  /** sha256 of the token the registration gets (a reclaim replaces the old one). */
  newTokenHash: string;
  ttlMs: number;
  /** The proof's challenge (its random part, hex) and when it expires: a challenge serves once. */
  challenge: { id: string; expiresAt: number };
}

/**
 * created: the name was free (or expired). reclaimed: it was live and bound to the same key, and
 * is now this registration's (the old token no longer works). taken: live, bound to another key.
 * challenge_used: the challenge already served a registration (a replayed request).
 */
export type RegisterResult =
  | { outcome: 'created'; name: string }
  | { outcome: 'reclaimed'; name: string }
  | { outcome: 'taken' }
  | { outcome: 'challenge_used' }
  /** The store holds its maximum of live registrations (a new name is refused; a reclaim is not). */
  | { outcome: 'full' }
  /** The client (clientKey of record.observedAddress) holds its maximum of live names; one frees in retryAfterMs. */
  | { outcome: 'client_full'; retryAfterMs: number };

/** The caps a store enforces in register(). */
export interface StoreLimits {
  /** Live registrations in all. */
  maxPeers?: number;
  /** Live names per client, the client being clientKey(record.observedAddress). */
  maxNamesPerClient?: number;
}

export type OwnerResult = 'ok' | 'not_found' | 'forbidden';

export interface ListPage {
  peers: Array<{ name: string; publicKey: string; lastSeen: number }>;
  /** Key of the last peer returned when more may follow, else null. */
  after: string | null;
}

export interface PeerStore {
  readonly kind: 'memory' | 'redis';
  /**
   * The deployment's 32-byte secret, from which the registry's keys derive: the same for every
   * registry process sharing the store.
   */
  secret(): Promise<Buffer>;
  /**
   * Atomic: of several concurrent registrations of one free name by different keys, exactly one
   * is created; and the caps (StoreLimits) hold however many registrations race.
   */
  register(input: RegisterInput): Promise<RegisterResult>;
  heartbeat(key: string, tokenHash: string, ttlMs: number, now: number): Promise<OwnerResult>;
  remove(key: string, tokenHash: string): Promise<OwnerResult>;
  get(key: string): Promise<PeerRecord | null>;
  /** The record with the key of its macs and its last keepalive sequence. */
  rendezvous(key: string): Promise<RendezvousEntry | null>;
  /**
   * Atomic: records `udp` and its holder with the sequence, if the registration still has
   * `tokenHash` and `sequence` is above the last one accepted. A new registration of the name
   * (a reclaim) forgets the mapping and the sequence.
   */
  keepalive(input: KeepaliveInput): Promise<KeepaliveResult>;
  /** Live peers with keys > `after` starting with `prefix`, in key order. */
  list(opts: { after: string | null; prefix: string; limit: number }): Promise<ListPage>;
  /** Number of live peers (for /metrics). */
  count(): Promise<number>;
  /** Throws when the store cannot answer (for /healthz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Thrown by a store when its backend is unreachable: the server answers 503. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
