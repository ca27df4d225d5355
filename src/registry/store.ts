// The one interface both stores (memory, Redis) implement. Records are keyed by nameKey(name).

export interface PeerRecord {
  /** The name as first registered (display form). */
  name: string;
  ip: string;
  port: number;
  addresses: string[];
  observedAddress: string;
  /** Milliseconds since the epoch of the registration or last heartbeat. */
  lastSeen: number;
}

export interface RegisterInput {
  record: PeerRecord;
  /** sha256 of the token a fresh registration gets. */
  newTokenHash: string;
  /** sha256 of the token the request presented, if any: renews a live registration it owns. */
  presentedTokenHash: string | null;
  ttlMs: number;
}

export type RegisterResult =
  | { outcome: 'created'; name: string }
  | { outcome: 'renewed'; name: string }
  | { outcome: 'taken' };

export type OwnerResult = 'ok' | 'not_found' | 'forbidden';

export interface ListPage {
  peers: Array<{ name: string; lastSeen: number }>;
  /** Key of the last peer returned when more may follow, else null. */
  after: string | null;
}

export interface PeerStore {
  readonly kind: 'memory' | 'redis';
  /** Atomic: of several concurrent registrations of one free name, exactly one is created. */
  register(input: RegisterInput): Promise<RegisterResult>;
  heartbeat(key: string, tokenHash: string, ttlMs: number, now: number): Promise<OwnerResult>;
  remove(key: string, tokenHash: string): Promise<OwnerResult>;
  get(key: string): Promise<PeerRecord | null>;
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
