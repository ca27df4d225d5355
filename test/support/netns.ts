// NAT topologies in Linux network namespaces, for tests that need real NAT routers between peers.
//
// Layout (all addresses TEST-NET-3 or 10/8, nothing routable):
//   public namespace: bridge br0 = 203.0.113.1/24, plus one address per public host
//                     (203.0.113.100, .101, ...); every public host lives in this one namespace.
//   NAT router i:     wan = 203.0.113.(2+i)/24 (a veth whose other end is a br0 port),
//                     bridge lan = 10.0.N.1/24 (N = 1+i unless given), nftables NAT on wan.
//   LAN host j:       eth0 = 10.0.N.(2+j)/24, default route via 10.0.N.1.
// Every interface is created directly inside its namespace, so interface names are fixed and the
// root namespace's links are never touched; namespaces are named p2ps-<pid>-<random>-<node>, so
// parallel runs never collide and leftovers of a dead process are recognisable (cleanupStale).
//
// What Linux NAT gives (each point is checked in test/harness/netns.test.ts):
//   'cone' = nftables `masquerade`. Mapping: for a new flow the kernel (nf_nat_core.c,
//     get_unique_tuple) takes 1. the WAN port this LAN address:port already has, if
//     WAN:port -> destination is free; 2. else the local port itself, if free towards that
//     destination; 3. else another port. So a host keeps one mapping for every destination
//     (endpoint-independent) and usually its own port, except when another LAN host already
//     holds that WAN port towards a destination: towards that one only, it gets another port.
//     Filtering: replies must match a conntrack entry's full 5-tuple, so only the exact remote
//     address AND port a host sent to get in (address-and-port-dependent: "port-restricted cone").
//   'symmetric' = `masquerade fully-random`: a random port (1024-65535) for every new 5-tuple.
//   Both: unsolicited UDP from the WAN is dropped silently and counted (a stock Linux router would
//   answer ICMP port unreachable; home routers stay silent). Mappings last as long as conntrack's
//   UDP timeouts (30 s; 120 s once a flow has had a reply and lived 2 s).
//   hairpin off: a LAN host sending to the NAT's own public address reaches nobody (dropped,
//   counted). On: an nftables map remembers every mapped port's LAN owner, a datagram to
//   WAN:port is DNATed to it and SNATed to the WAN address (the receiver sees a public source).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runProcess, startProcess, type RunResult, type RunningProcess } from './cli';

export const NETNS_PREFIX = 'p2ps-';
const REPO_ROOT = resolve(__dirname, '../..');
const NAME = /^[a-z][a-z0-9]{0,11}$/;

export type NatType = 'cone' | 'symmetric';

export interface NatSpec {
  type: NatType;
  /** Names of the hosts on this NAT's LAN (unique in the whole topology). */
  hosts: string[];
  /** Let LAN hosts reach each other through the NAT's public address (default false). */
  hairpin?: boolean;
  /** N of the LAN 10.0.N.0/24 (default 1 + the NAT's index); two NATs may use the same one. */
  lan?: number;
}

export interface TopologySpec {
  /** Names of the public hosts (addresses 203.0.113.100, .101, ... in the public namespace). */
  public: string[];
  /** NAT routers by name, WAN addresses 203.0.113.2, .3, ... in this order. */
  nats: Record<string, NatSpec>;
}

/** Packet counters of one NAT router's nftables rules. */
export interface NatCounters {
  /** Forwarded LAN -> WAN (before masquerade). */
  outbound: number;
  /** Forwarded WAN -> LAN: replies that matched a mapping. */
  inbound: number;
  /** UDP from the WAN that matched no mapping: dropped. */
  unsolicited: number;
  /** UDP from the LAN to the NAT's own public address (dropped unless hairpin is on). */
  hairpin: number;
}

export interface Topology {
  readonly spec: TopologySpec;
  /** Every namespace this topology created. */
  readonly namespaces: string[];
  /** The namespace of a node: 'public' or a public host (one namespace), a NAT router, a LAN host. */
  ns(node: string): string;
  /** A public host's address, a NAT's public (WAN) address, or a LAN host's address. */
  ip(node: string): string;
  /** The NAT a LAN host sits behind. */
  natOf(host: string): string;
  /** Runs a command to completion in node's namespace; throws on a non-zero exit unless check is false. */
  run(node: string, cmd: string[], opts?: { input?: string; timeoutMs?: number; check?: boolean }): Promise<RunResult>;
  /** Starts a long-running command in node's namespace, output captured; destroy() stops it. */
  spawn(node: string, cmd: string[], opts?: { stdin?: 'ignore' | 'pipe'; env?: NodeJS.ProcessEnv }): RunningProcess;
  /**
   * `node --require tsx/cjs script ...args` in node's namespace, from the repository root: tsx's
   * CommonJS hook alone starts in a third of the CPU time of `--import tsx` (no loader thread).
   */
  spawnNode(node: string, script: string, args?: string[], opts?: { stdin?: 'ignore' | 'pipe' }): RunningProcess;
  /** Forgets every mapping of a NAT (`conntrack -F` in the router's namespace). */
  flushConntrack(nat: string): Promise<void>;
  /** The router's UDP conntrack entries, one line each (`conntrack -L -p udp`). */
  conntrack(nat: string): Promise<string[]>;
  counters(nat: string): Promise<NatCounters>;
  /** Stops every process started here and removes every namespace (and so every link). */
  destroy(): Promise<void>;
}

interface Live {
  namespaces: string[];
  procs: Set<RunningProcess>;
}
const live = new Set<Live>();
let hooked = false;

function destroySync(l: Live): void {
  for (const p of l.procs) p.proc.kill('SIGKILL');
  spawnSync('ip', ['-force', '-batch', '-'], { input: l.namespaces.map((n) => `netns del ${n}\n`).join(''), stdio: ['pipe', 'ignore', 'ignore'] });
  live.delete(l);
}

/** On exit or SIGINT/SIGTERM/SIGHUP, whatever is still built is removed (synchronously). */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => [...live].forEach(destroySync));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      [...live].forEach(destroySync);
      // Nobody else handles it: die of it, as without this hook.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

async function ip(args: string[], input?: string): Promise<void> {
  const r = await runProcess('ip', args, { input, timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.code}): ${r.stderr}${input ? `\ninput:\n${input}` : ''}`);
}

/** Builds the topology; with `t`, its destroy() is registered as t.after. */
export async function buildTopology(spec: TopologySpec, t?: { after(fn: () => Promise<void>): void }): Promise<Topology> {
  const natNames = Object.keys(spec.nats);
  const names = ['public', ...spec.public, ...natNames, ...natNames.flatMap((n) => spec.nats[n]!.hosts)];
  for (const n of names) if (!NAME.test(n)) throw new Error(`node name ${JSON.stringify(n)} is not ${NAME}`);
  if (new Set(names).size !== names.length) throw new Error(`node names repeat: ${names.join(', ')}`);
  if (natNames.length > 90 || spec.public.length > 150) throw new Error('too many NATs or public hosts');

  const run = `${NETNS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}-`;
  const nsOf = new Map<string, string>();
  const ipOf = new Map<string, string>();
  const natOfHost = new Map<string, string>();
  const lanOf = new Map<string, string>();
  nsOf.set('public', `${run}public`);
  spec.public.forEach((p, k) => {
    nsOf.set(p, `${run}public`);
    ipOf.set(p, `203.0.113.${100 + k}`);
  });
  natNames.forEach((nat, i) => {
    const lan = spec.nats[nat]!.lan ?? i + 1;
    if (!Number.isInteger(lan) || lan < 0 || lan > 255) throw new Error(`lan ${lan} of ${nat} is not 0-255`);
    nsOf.set(nat, run + nat);
    ipOf.set(nat, `203.0.113.${2 + i}`);
    lanOf.set(nat, `10.0.${lan}`);
    spec.nats[nat]!.hosts.forEach((h, j) => {
      if (j > 250) throw new Error(`too many hosts behind ${nat}`);
      nsOf.set(h, run + h);
      ipOf.set(h, `10.0.${lan}.${2 + j}`);
      natOfHost.set(h, nat);
    });
  });
  const get = <T>(m: Map<string, T>, key: string, what: string): T => {
    const v = m.get(key);
    if (v === undefined) throw new Error(`${JSON.stringify(key)} is not ${what} of this topology`);
    return v;
  };

  const l: Live = { namespaces: [...new Set(nsOf.values())], procs: new Set() };
  hookExit();
  live.add(l);
  let destroyed: Promise<void> | undefined;
  const destroy = () =>
    (destroyed ??= (async () => {
      await Promise.all([...l.procs].map((p) => p.stop('SIGKILL')));
      await ip(['-force', '-batch', '-'], l.namespaces.map((n) => `netns del ${n}\n`).join('')).catch(() => {});
      live.delete(l);
    })());
  t?.after(destroy);

  const exec = (node: string, cmd: string[]) => ['netns', 'exec', get(nsOf, node, 'a node'), ...cmd];
  const topo: Topology = {
    spec,
    namespaces: l.namespaces,
    ns: (node) => get(nsOf, node, 'a node'),
    ip: (node) => get(ipOf, node, 'a host or NAT'),
    natOf: (host) => get(natOfHost, host, 'a LAN host'),
    async run(node, cmd, opts = {}) {
      const r = await runProcess('ip', exec(node, cmd), { input: opts.input, timeoutMs: opts.timeoutMs ?? 20_000 });
      if (r.code !== 0 && opts.check !== false) throw new Error(`[${node}] ${cmd.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr}`);
      return r;
    },
    spawn(node, cmd, opts = {}) {
      if (destroyed) throw new Error('this topology is destroyed');
      const p = startProcess('ip', exec(node, cmd), { cwd: REPO_ROOT, label: `[${node}] ${cmd.join(' ')}`, ...opts });
      l.procs.add(p);
      void p.exited.then(() => l.procs.delete(p));
      return p;
    },
    spawnNode(node, script, args = [], opts = {}) {
      return topo.spawn(node, [process.execPath, '--require', 'tsx/cjs', resolve(REPO_ROOT, script), ...args], opts);
    },
    async flushConntrack(nat) {
      get(lanOf, nat, 'a NAT');
      await topo.run(nat, ['conntrack', '-F']);
    },
    async conntrack(nat) {
      get(lanOf, nat, 'a NAT');
      const r = await topo.run(nat, ['conntrack', '-L', '-p', 'udp']);
      return r.stdout.split('\n').filter((line) => line.trim() !== '');
    },
    async counters(nat) {
      get(lanOf, nat, 'a NAT');
      const r = await topo.run(nat, ['nft', '-j', 'list', 'counters', 'table', 'ip', 'nat']);
      const out: Record<string, number> = {};
      for (const o of (JSON.parse(r.stdout) as { nftables: Array<{ counter?: { name: string; packets: number } }> }).nftables) {
        if (o.counter) out[o.counter.name] = o.counter.packets;
      }
      return { outbound: out.outbound ?? NaN, inbound: out.inbound ?? NaN, unsolicited: out.unsolicited ?? NaN, hairpin: out.hairpin ?? NaN };
    },
    destroy,
  };

  try {
    // Namespaces and veth pairs, each end created inside its namespace.
    const root = l.namespaces.map((n) => `netns add ${n}`);
    natNames.forEach((nat, i) => {
      root.push(`link add wan netns ${nsOf.get(nat)} type veth peer name nat${i} netns ${nsOf.get('public')}`);
      spec.nats[nat]!.hosts.forEach((h, j) => root.push(`link add eth0 netns ${nsOf.get(h)} type veth peer name h${j} netns ${nsOf.get(nat)}`));
    });
    await ip(['-batch', '-'], root.join('\n') + '\n');

    const jobs: Promise<void>[] = [];
    const pub = ['link set lo up', 'link add br0 type bridge', 'link set br0 up', 'addr add 203.0.113.1/24 dev br0'];
    spec.public.forEach((p) => pub.push(`addr add ${ipOf.get(p)}/24 dev br0`));
    natNames.forEach((_nat, i) => pub.push(`link set nat${i} master br0`, `link set nat${i} up`));
    jobs.push(ip(['-n', nsOf.get('public')!, '-batch', '-'], pub.join('\n') + '\n'));
    for (const nat of natNames) {
      const n = spec.nats[nat]!;
      const lines = ['link set lo up', 'link set wan up', `addr add ${ipOf.get(nat)}/24 dev wan`, 'link add lan type bridge', 'link set lan up'];
      lines.push(`addr add ${lanOf.get(nat)}.1/24 dev lan`);
      n.hosts.forEach((_h, j) => lines.push(`link set h${j} master lan`, `link set h${j} up`));
      jobs.push(ip(['-n', nsOf.get(nat)!, '-batch', '-'], lines.join('\n') + '\n'));
      // Routing on, no ICMP redirects for hairpinned packets, and (where br_netfilter is loaded)
      // the LAN bridge a plain switch whose frames skip the router's IP rules.
      const script = [
        'echo 1 > /proc/sys/net/ipv4/ip_forward',
        'echo 0 > /proc/sys/net/ipv4/conf/all/send_redirects',
        'echo 0 > /proc/sys/net/ipv4/conf/default/send_redirects',
        'f=/proc/sys/net/bridge/bridge-nf-call-iptables; if [ -e $f ]; then echo 0 > $f; fi',
      ].join(' && ');
      jobs.push(
        (async () => {
          await topo.run(nat, ['sh', '-c', `${script} && nft -f -`], { input: natRules(n, ipOf.get(nat)!, lanOf.get(nat)!) });
        })(),
      );
      for (const h of n.hosts) {
        const hostLines = ['link set lo up', 'link set eth0 up', `addr add ${ipOf.get(h)}/24 dev eth0`, `route add default via ${lanOf.get(nat)}.1`];
        jobs.push(ip(['-n', nsOf.get(h)!, '-batch', '-'], hostLines.join('\n') + '\n'));
      }
    }
    const settled = await Promise.allSettled(jobs);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    await destroy();
    throw err;
  }
  return topo;
}

/** The router's nftables ruleset (table ip nat; interfaces wan and lan). */
function natRules(n: NatSpec, wan: string, lan: string): string {
  const hairpin = n.hairpin === true;
  return `table ip nat {
  counter outbound {}
  counter inbound {}
  counter unsolicited {}
  counter hairpin {}
${hairpin ? '  map owner { type inet_service : ipv4_addr . inet_service; flags dynamic, timeout; timeout 5m; }\n' : ''}\
  chain count {
    type filter hook prerouting priority mangle; policy accept;
    iifname "lan" ip daddr ${wan} meta l4proto udp counter name hairpin
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
${hairpin ? `    iifname "lan" ip daddr ${wan} meta l4proto udp dnat ip to udp dport map @owner\n` : ''}\
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan" meta l4proto udp counter name unsolicited drop
    iifname "lan" ip daddr ${wan} meta l4proto udp drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "lan" oifname "wan" counter name outbound accept
    iifname "wan" oifname "lan" ct state established,related counter name inbound accept
    iifname "wan" drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" masquerade${n.type === 'symmetric' ? ' fully-random' : ''}
${hairpin ? `    oifname "lan" ip saddr ${lan}.0/24 ct status dnat snat ip to ${wan}\n` : ''}\
  }
${
  hairpin
    ? `  chain remember {
    type filter hook postrouting priority srcnat + 10; policy accept;
    oifname "wan" meta l4proto udp update @owner { udp sport : ct original ip saddr . ct original proto-src }
  }
`
    : ''
}}
`;
}

/** Names in `ip netns list`. */
export function listNetns(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((line) => line.split(' ')[0]!).filter((n) => n !== '');
}

/** Names of the links in this process's (the root) namespace. */
export function listLinks(): string[] {
  const r = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1]).filter((n): n is string => !!n);
}

function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('node');
  } catch {
    return false;
  }
}

/** The pid in a harness namespace's name, or null when the name is not ours. */
export function ownerPid(ns: string, prefix = NETNS_PREFIX): number | null {
  const m = ns.startsWith(prefix) ? /^(\d+)-/.exec(ns.slice(prefix.length)) : null;
  return m ? Number(m[1]) : null;
}

/**
 * Removes the namespaces (and kills the processes inside them) that a harness process which is no
 * longer running left behind, e.g. after SIGKILL. Namespaces of running processes are kept.
 * Returns the names removed.
 */
export function cleanupStale(prefix = NETNS_PREFIX): string[] {
  const stale = listNetns().filter((n) => {
    const pid = ownerPid(n, prefix);
    return pid !== null && !alive(pid);
  });
  for (const n of stale) {
    const pids = spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split('\n').filter((p) => /^\d+$/.test(p))) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  }
  return stale;
}

/** Why namespace NAT tests cannot run here, or null when they can (root, ip, nft, conntrack, ip netns add). */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root';
  const missing = [
    ['ip', '-V'],
    ['nft', '--version'],
    ['conntrack', '--version'],
  ].filter(([cmd, arg]) => spawnSync(cmd!, [arg!], { stdio: 'ignore' }).status !== 0);
  if (missing.length > 0) return `missing ${missing.map(([cmd]) => cmd).join(', ')} (Debian: iproute2, nftables, conntrack)`;
  const probe = `${NETNS_PREFIX}${process.pid}-probe`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  spawnSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  return add.status === 0 ? null : `ip netns add fails: ${add.stderr.trim()}`;
}

/**
 * For `describe(..., { skip: netnsSkip() })`: false when the tests can run. When they cannot:
 * throws under CI=true (they must run there), else warns loudly and returns the reason.
 */
export function netnsSkip(): false | string {
  const why = netnsUnavailable();
  if (why === null) return false;
  if (process.env.CI === 'true') throw new Error(`network namespace tests cannot run (${why}), and CI=true requires them`);
  console.warn(`\n*** SKIPPING network namespace (NAT) tests: ${why} (they are required in CI) ***\n`);
  return `network namespaces unavailable: ${why}`;
}
