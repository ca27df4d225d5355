// Introductions between registry processes on one Redis (README.md, "Several registries on one
// Redis"): a process that gets an INTRO_REQUEST for an owner kept alive at another asks that one
// (the holder) on the Redis channel `<prefix>intro:<holder id>`; the holder sends the INTRO from its
// own socket, opens the relay session, and answers on the asker's channel. Subscribing takes a
// connection of its own (a subscribed ioredis connection can do nothing else). On a Redis Cluster
// the channels are sharded (SSUBSCRIBE/SPUBLISH, README.md "Redis Cluster"): each channel lives
// on the master of its slot, so introductions spread over the masters instead of every message
// being broadcast to every node as cluster-wide PUBLISH does.
import { randomBytes } from 'node:crypto';
import { connectRedis, parseRedisTarget, slotMapSuspect, type AnyRedis } from './redis-connection';
import type { Candidate } from '../wire/rendezvous';
import type { IntroBus, IntroOrder, IntroResult } from './rendezvous';

/** How long an asker waits for the holder's answer. */
export const INTRO_BUS_TIMEOUT_MS = 1000;

interface OrderMessage {
  kind: 'order';
  id: string;
  replyTo: string;
  order: IntroOrder;
}

interface ResultMessage {
  kind: 'result';
  id: string;
  result: IntroResult;
}

export interface RedisIntroBusOptions {
  url: string;
  prefix: string;
  /** This process's id (its channel). */
  id: string;
  /** Carries out an introduction asked by another process. */
  serve(order: IntroOrder): Promise<IntroResult>;
  timeoutMs?: number;
}

const isEndpoint = (v: unknown): v is Candidate =>
  typeof v === 'object' && v !== null && typeof (v as Candidate).ip === 'string' && Number.isInteger((v as Candidate).port);

/** The order in a message from Redis, checked field by field; null when malformed. */
function checkOrder(o: unknown): IntroOrder | null {
  const x = o as Partial<IntroOrder> | null;
  if (!x || typeof x.owner !== 'string' || typeof x.token !== 'string' || !isEndpoint(x.requester) || !Array.isArray(x.hosts) || !x.hosts.every(isEndpoint)) return null;
  return { owner: x.owner, token: x.token, requester: x.requester, hosts: x.hosts, relay: x.relay === true, local: false };
}

export class RedisIntroBus implements IntroBus {
  private readonly sub: AnyRedis;
  private readonly pub: AnyRedis;
  private readonly sharded: boolean;
  private readonly pending = new Map<string, (r: IntroResult | null) => void>();
  private readonly subscribed: Promise<unknown>;

  constructor(private readonly o: RedisIntroBusOptions) {
    const target = parseRedisTarget(o.url);
    this.sharded = target.kind === 'cluster';
    // The subscriber queues its (S)SUBSCRIBE until connected and subscribes again after a reconnect.
    this.sub = connectRedis(target, { queue: true, shardedSubscribers: this.sharded });
    this.pub = connectRedis(target, { commandTimeoutMs: o.timeoutMs ?? INTRO_BUS_TIMEOUT_MS });
    for (const r of [this.sub, this.pub]) r.on('error', () => {}); // the store reports Redis trouble
    this.sub.on(this.sharded ? 'smessage' : 'message', (_channel: string, text: string) => this.received(text));
    const mine = this.channel(o.id);
    this.subscribed = (this.sharded ? this.sub.ssubscribe(mine) : this.sub.subscribe(mine)).catch(() => {});
  }

  /** A failed publish is a sign of a failover too: the Cluster client then reads its slot map every second. */
  private publish(channel: string, text: string): Promise<number> {
    const sent = (this.sharded ? this.pub.spublish(channel, text) : this.pub.publish(channel, text)) as Promise<number>;
    return sent.catch((err: unknown) => {
      slotMapSuspect(this.pub);
      throw err;
    });
  }

  private channel(id: string): string {
    return `${this.o.prefix}intro:${id}`;
  }

  /** Resolves once subscribed and able to publish (or after timeoutMs). */
  async ready(timeoutMs: number): Promise<void> {
    // The publisher fails commands at once until it is connected (no offline queue): wait for it too.
    const pub = this.pub.status === 'ready' ? Promise.resolve() : new Promise<void>((r) => this.pub.once('ready', () => r()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([this.subscribed, pub]), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  async request(holderId: string, order: IntroOrder): Promise<IntroResult | null> {
    const id = randomBytes(8).toString('hex');
    const message: OrderMessage = { kind: 'order', id, replyTo: this.o.id, order };
    const answer = new Promise<IntroResult | null>((resolve) => {
      const timer = setTimeout(() => settle(null), this.o.timeoutMs ?? INTRO_BUS_TIMEOUT_MS);
      const settle = (r: IntroResult | null) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(r);
      };
      this.pending.set(id, settle);
    });
    try {
      const receivers = await this.publish(this.channel(holderId), JSON.stringify(message));
      if (receivers === 0) this.pending.get(id)?.({ held: false, relaySession: 0 }); // the holder is gone
    } catch {
      this.pending.get(id)?.(null);
    }
    return answer;
  }

  private received(text: string): void {
    type Loose = { kind?: unknown; id?: unknown; replyTo?: unknown; order?: unknown; result?: Partial<IntroResult> };
    let m: Loose;
    try {
      m = (JSON.parse(text) ?? {}) as Loose;
    } catch {
      return;
    }
    if (typeof m.id !== 'string') return;
    if (m.kind === 'result') {
      const r = m.result;
      if (r && typeof r.held === 'boolean' && Number.isInteger(r.relaySession)) this.pending.get(m.id)?.({ held: r.held, relaySession: r.relaySession! });
      return;
    }
    const order = m.kind === 'order' && typeof m.replyTo === 'string' ? checkOrder(m.order) : null;
    if (!order) return;
    const replyTo = this.channel(m.replyTo as string);
    const id = m.id;
    this.o
      .serve(order)
      .catch(() => ({ held: false, relaySession: 0 }))
      .then((result) => this.publish(replyTo, JSON.stringify({ kind: 'result', id, result } satisfies ResultMessage)))
      .catch(() => {}); // the asker times out and answers busy
  }

  async close(): Promise<void> {
    for (const settle of [...this.pending.values()]) settle(null);
    // No QUIT: towards an unreachable Redis it would wait forever (and reconnects keep the process alive).
    this.sub.disconnect();
    this.pub.disconnect();
  }
}
