// Plain UDP sockets inside a network namespace, driven from the test process: each UdpAgent is one
// netns-agent.ts process in one namespace of a Topology (stopped with it).
import { createInterface } from 'node:readline';
import type { RunningProcess } from './cli';
import type { Topology } from './netns';
import type { Address } from './relay';

export type { Address };

export interface Datagram extends Address {
  data: Buffer;
  /** The data as UTF-8. */
  text: string;
}

type Reply = { ok: true; [k: string]: unknown } | { ok: false; error: string };

export class UdpAgent {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private readonly sockets = new Map<number, AgentSocket>();
  private readonly ready: Promise<void>;

  private constructor(
    readonly node: string,
    readonly proc: RunningProcess,
  ) {
    let onReady!: () => void;
    this.ready = new Promise((r) => (onReady = r));
    createInterface({ input: proc.proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { id?: number; event?: string; sock?: number; address?: string; port?: number; data?: string };
      if (m.event === 'ready') onReady();
      else if (m.event === 'message') this.sockets.get(m.sock!)?.deliver(m.address!, m.port!, Buffer.from(m.data!, 'base64'));
      else if (m.id !== undefined) {
        this.pending.get(m.id)?.resolve(m as unknown as Reply);
        this.pending.delete(m.id);
      }
    });
    void proc.exited.then(({ code, signal }) => {
      const err = new Error(`UDP agent in ${node} exited (${code ?? signal})\nstderr: ${proc.stderr}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  /** Starts an agent in `node`'s namespace and waits until it listens for commands. */
  static async start(topo: Topology, node: string): Promise<UdpAgent> {
    const agent = new UdpAgent(node, topo.spawnNode(node, 'test/support/netns-agent.ts', [], { stdin: 'pipe' }));
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`UDP agent in ${node} not ready\nstderr: ${agent.proc.stderr}`)), 20_000).unref(),
    );
    await Promise.race([agent.ready, timeout, agent.proc.exited.then(() => Promise.reject(new Error(`UDP agent in ${node} exited: ${agent.proc.stderr}`)))]);
    return agent;
  }

  /** @internal One command, answered or rejected. */
  async call(op: string, args: object): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.proc.proc.stdin!.write(JSON.stringify({ id, op, ...args }) + '\n');
    });
    if (!reply.ok) throw new Error(`${this.node}: ${op} failed: ${reply.error}`);
    return reply;
  }

  /** A UDP socket bound in the namespace (default: every address, a free port). */
  async bind(address = '0.0.0.0', port = 0): Promise<AgentSocket> {
    const r = await this.call('bind', { address, port });
    const s = new AgentSocket(this, r.sock as number, r.port as number);
    this.sockets.set(s.id, s);
    return s;
  }

  /** Starts the project's STUN server (src/registry/stun-server.ts) in this agent's namespace. */
  async serveStun(address: string, port = 0): Promise<Address> {
    const r = await this.call('stunServer', { address, port });
    return { address, port: r.port as number };
  }
}

export class AgentSocket {
  /** Every datagram received, in order (STUN answers to this socket's own requests excepted). */
  readonly received: Datagram[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly agent: UdpAgent,
    readonly id: number,
    /** The local port. */
    readonly port: number,
  ) {}

  /** @internal */
  deliver(address: string, port: number, data: Buffer): void {
    this.received.push({ address, port, data, text: data.toString('utf8') });
    for (const w of this.waiters) w();
  }

  /** Sends `data` to `to`, `times` times `intervalMs` apart (default once); resolves after the last. */
  async send(to: Address, data: string | Buffer, opts: { times?: number; intervalMs?: number } = {}): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    await this.agent.call('send', { sock: this.id, ...to, data: bytes.toString('base64'), times: opts.times ?? 1, intervalMs: opts.intervalMs ?? 0 });
  }

  /** This socket's address as a STUN server sees it (XOR-MAPPED-ADDRESS). */
  async stun(server: Address, timeoutMs = 3000): Promise<Address> {
    const r = await this.agent.call('stun', { sock: this.id, ...server, timeoutMs });
    const { address, port } = r.mapped as Address;
    return { address, port };
  }

  /** Datagrams received from `from` (its port too, unless `from.port` is omitted). */
  receivedFrom(from: { address: string; port?: number }): Datagram[] {
    return this.received.filter((d) => d.address === from.address && (from.port === undefined || d.port === from.port));
  }

  /** The first datagram (already received or to come) that `match` accepts; rejects after timeoutMs. */
  waitFor(match: (d: Datagram) => boolean, what: string, timeoutMs = 5000): Promise<Datagram> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const d = this.received.find(match);
        if (!d) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(d);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const got = this.received.map((d) => `${d.address}:${d.port} ${JSON.stringify(d.text.slice(0, 40))}`);
        reject(new Error(`${this.agent.node} socket ${this.port}: no ${what} within ${timeoutMs} ms; received: [${got.join(', ')}]`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }
}
