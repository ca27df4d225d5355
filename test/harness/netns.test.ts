// The network-namespace NAT harness (test/support/netns.ts) really builds the NATs it claims:
// plain UDP sockets in the namespaces, the project's STUN server on the public side, and the NAT
// routers' own nftables counters and conntrack tables as proof that datagrams crossed (or were
// dropped by) a NAT. Also what Linux masquerade does, checked rather than assumed.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { resolve } from 'node:path';
import { startProcess } from '../support/cli';
import {
  buildTopology,
  cleanupStale,
  listLinks,
  listNetns,
  netnsSkip,
  ownerPid,
  type NatType,
  type Topology,
  type TopologySpec,
} from '../support/netns';
import { UdpAgent, type Address, type AgentSocket } from '../support/netns-udp';

interface Net {
  topo: Topology;
  /** The agent in the public namespace (every public host's address is there). */
  pub: UdpAgent;
  /** The project's STUN server on port 3478 of every public host, in order. */
  servers: Address[];
  /** servers[0]. */
  stun: Address;
  host: Record<string, UdpAgent>;
}

/** Builds `spec` (removed after the test), an agent in the public namespace serving STUN, one per LAN host. */
async function start(t: TestContext, spec: TopologySpec): Promise<Net> {
  const topo = await buildTopology(spec, t);
  const hosts = Object.values(spec.nats).flatMap((n) => n.hosts);
  const [pub, ...agents] = await Promise.all([UdpAgent.start(topo, spec.public[0]!), ...hosts.map((h) => UdpAgent.start(topo, h))]);
  const servers = await Promise.all(spec.public.map((p) => pub!.serveStun(topo.ip(p), 3478)));
  return { topo, pub: pub!, servers, stun: servers[0]!, host: Object.fromEntries(hosts.map((h, i) => [h, agents[i]!])) };
}

const texts = (s: AgentSocket) => s.received.map((d) => d.text);

async function until(cond: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await cond()); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

/** Namespaces and root links, leaving out the namespaces of other harness runs still going on. */
function snapshot(): { netns: string[]; links: string[] } {
  const others = (n: string) => {
    const pid = ownerPid(n);
    return pid !== null && pid !== process.pid && !processGone(pid);
  };
  return { netns: listNetns().filter((n) => !others(n)).sort(), links: listLinks().sort() };
}

describe('NAT topologies in network namespaces', { skip: netnsSkip() }, () => {
  before(() => {
    const removed = cleanupStale();
    if (removed.length > 0) console.log(`removed namespaces left by dead runs: ${removed.join(', ')}`);
  });
  after(() => {
    assert.deepEqual(listNetns().filter((n) => ownerPid(n) === process.pid), [], 'every test removed its namespaces');
  });

  test('cone NAT (masquerade): mapped address is the NAT public address, the same port towards two servers, the local port kept', async (t) => {
    const { topo, servers, host } = await start(t, { public: ['registry', 'other'], nats: { nat: { type: 'cone', hosts: ['h'] } } });
    const s = await host.h!.bind();
    const [m1, m2] = [await s.stun(servers[0]!), await s.stun(servers[1]!)];
    assert.equal(m1.address, '203.0.113.2');
    assert.equal(m1.address, topo.ip('nat'));
    assert.equal(m2.address, m1.address);
    assert.equal(m2.port, m1.port, 'endpoint-independent mapping: both servers see one port');
    assert.equal(m1.port, s.port, 'masquerade keeps a free source port');
    // The requests really crossed the router: its forward counters and its conntrack table say so.
    const c = await topo.counters('nat');
    assert.ok(c.outbound >= 2 && c.inbound >= 2, JSON.stringify(c));
    const entries = await topo.conntrack('nat');
    for (const server of servers) {
      assert.ok(
        entries.some((e) => e.includes(`src=${topo.ip('h')} dst=${server.address} sport=${s.port} dport=${server.port}`)),
        `a mapping towards ${server.address}:${server.port} in\n${entries.join('\n')}`,
      );
    }
  });

  test('symmetric NAT (masquerade fully-random): another mapped port for every destination', async (t) => {
    const { topo, servers, host } = await start(t, { public: ['registry', 'other'], nats: { nat: { type: 'symmetric', hosts: ['h'] } } });
    const s = await host.h!.bind();
    const [m1, m2] = [await s.stun(servers[0]!), await s.stun(servers[1]!)];
    const again = await s.stun(servers[0]!);
    assert.equal(m1.address, topo.ip('nat'));
    assert.equal(m2.address, topo.ip('nat'));
    // Each port is random in 1024-65535: the two match by chance once in ~64,500 runs.
    assert.notEqual(m2.port, m1.port, 'a port per destination');
    assert.deepEqual(again, m1, 'the same destination keeps its mapping');
  });

  test('filtering: unsolicited datagrams are dropped at the NAT; after the host sent, only that exact address and port get through', async (t) => {
    const { topo, pub, stun, host } = await start(t, { public: ['registry', 'other'], nats: { nat: { type: 'cone', hosts: ['h'] } } });
    const s = await host.h!.bind();
    const mapped = await s.stun(stun);
    const remote = await pub.bind(topo.ip('registry'), 4000);
    const otherPort = await pub.bind(topo.ip('registry'), 4001);
    const otherAddress = await pub.bind(topo.ip('other'), 4000);
    const at = { address: topo.ip('registry'), port: 4000 };

    const c0 = await topo.counters('nat');
    await remote.send(mapped, 'unsolicited');
    await until(async () => (await topo.counters('nat')).unsolicited === c0.unsolicited + 1, 'the NAT to drop the unsolicited datagram');

    await s.send(at, 'hello');
    const hello = await remote.waitFor((d) => d.text === 'hello', 'the host hello');
    assert.deepEqual({ address: hello.address, port: hello.port }, mapped, 'the same mapping as towards the STUN server');
    await otherPort.send(mapped, 'same address, other port');
    await otherAddress.send(mapped, 'other address, same port');
    await remote.send(mapped, 'reply');
    await s.waitFor((d) => d.text === 'reply', 'the reply');
    // The other two reached the NAT and were dropped there, so they can never arrive.
    await until(async () => (await topo.counters('nat')).unsolicited === c0.unsolicited + 3, 'the NAT to drop both');
    assert.deepEqual(texts(s), ['reply']);
  });

  const punch = async (t: TestContext, a: NatType, b: NatType) => {
    const { topo, stun, host } = await start(t, {
      public: ['registry'],
      nats: { nata: { type: a, hosts: ['alice'] }, natb: { type: b, hosts: ['bob'] } },
    });
    const [sa, sb] = await Promise.all([host.alice!.bind(), host.bob!.bind()]);
    const [ma, mb] = await Promise.all([sa.stun(stun), sb.stun(stun)]);
    assert.equal(ma.address, topo.ip('nata'));
    assert.equal(mb.address, topo.ip('natb'));
    const before = await Promise.all([topo.counters('nata'), topo.counters('natb')]);
    // Both at once, each to the other's mapped address: 20 datagrams, 50 ms apart.
    const times = 20;
    const sent = Promise.all([
      sa.send(mb, 'punch from alice', { times, intervalMs: 50 }),
      sb.send(ma, 'punch from bob', { times, intervalMs: 50 }),
    ]);
    return { topo, sa, sb, ma, mb, before, sent, times };
  };

  test('hole punching: two hosts behind two cone NATs reach each other at their mapped addresses', async (t) => {
    const { sa, sb, ma, mb, sent } = await punch(t, 'cone', 'cone');
    const fromBob = await sa.waitFor((d) => d.text === 'punch from bob', 'a punch from bob');
    const fromAlice = await sb.waitFor((d) => d.text === 'punch from alice', 'a punch from alice');
    assert.deepEqual({ address: fromBob.address, port: fromBob.port }, mb);
    assert.deepEqual({ address: fromAlice.address, port: fromAlice.port }, ma);
    await sent;
    // The punched path carries data both ways from now on.
    await sa.send(mb, 'data to bob');
    await sb.send(ma, 'data to alice');
    await sb.waitFor((d) => d.text === 'data to bob', 'data from alice');
    await sa.waitFor((d) => d.text === 'data to alice', 'data from bob');
  });

  for (const [a, b] of [
    ['symmetric', 'symmetric'],
    // Linux masquerade filters by port too, so the symmetric side's new port is never let in.
    ['cone', 'symmetric'],
  ] as const) {
    test(`hole punching fails between a ${a} and a ${b} NAT: every punch is dropped at a NAT`, async (t) => {
      const { topo, sa, sb, before, sent, times } = await punch(t, a, b);
      await sent;
      // Bob's punches match none of alice's mappings at NAT A, nor alice's any of bob's at NAT B:
      // every one is dropped there...
      const dropped = async () => {
        const [ca, cb] = await Promise.all([topo.counters('nata'), topo.counters('natb')]);
        return [ca.unsolicited - before[0].unsolicited, cb.unsolicited - before[1].unsolicited];
      };
      await until(async () => (await dropped()).every((n) => n >= times), 'every punch to be dropped').catch(() => {});
      assert.deepEqual(await dropped(), [times, times]);
      // ...so neither host received a single one.
      assert.deepEqual(texts(sa), []);
      assert.deepEqual(texts(sb), []);
    });
  }

  test('hairpinning off: a host cannot reach its neighbour through the NAT public address, only through its LAN address', async (t) => {
    const { topo, stun, host } = await start(t, { public: ['registry'], nats: { nat: { type: 'cone', hosts: ['alice', 'bob'] } } });
    const [sa, sb] = await Promise.all([host.alice!.bind(), host.bob!.bind()]);
    const mb = await sb.stun(stun);
    await sa.stun(stun);
    assert.equal(mb.address, topo.ip('nat'));
    const c0 = await topo.counters('nat');
    await sa.send(mb, 'via the public address');
    await sa.send({ address: topo.ip('bob'), port: sb.port }, 'via the LAN');
    const d = await sb.waitFor((x) => x.text === 'via the LAN', 'the LAN datagram');
    assert.deepEqual({ address: d.address, port: d.port }, { address: topo.ip('alice'), port: sa.port });
    // The first one reached the NAT (and went no further): it can never arrive.
    await until(async () => (await topo.counters('nat')).hairpin === c0.hairpin + 1, 'the hairpin datagram at the NAT');
    assert.deepEqual(texts(sb), ['via the LAN']);
  });

  test('hairpinning on: the neighbour is reached through the NAT public address and sees the sender public mapping', async (t) => {
    const { topo, stun, host } = await start(t, {
      public: ['registry'],
      nats: { nat: { type: 'cone', hosts: ['alice', 'bob'], hairpin: true } },
    });
    const [sa, sb] = await Promise.all([host.alice!.bind(), host.bob!.bind()]);
    const [ma, mb] = await Promise.all([sa.stun(stun), sb.stun(stun)]);
    await sa.send(mb, 'via the public address');
    const d = await sb.waitFor((x) => x.text === 'via the public address', 'the hairpinned datagram');
    assert.deepEqual({ address: d.address, port: d.port }, ma, 'bob sees alice as the NAT maps her');
    await sb.send(ma, 'back');
    await sa.waitFor((x) => x.text === 'back', 'the hairpinned answer');
    assert.ok((await topo.counters('nat')).hairpin >= 2);
  });

  test('conntrack -F on a router forgets its mappings: the next datagram from outside is dropped, a symmetric NAT maps anew', async (t) => {
    const { topo, pub, stun, host } = await start(t, {
      public: ['registry'],
      nats: { cone: { type: 'cone', hosts: ['c'] }, sym: { type: 'symmetric', hosts: ['s'] } },
    });
    const remote = await pub.bind(topo.ip('registry'), 4000);
    const sc = await host.c!.bind();
    await sc.send({ address: topo.ip('registry'), port: 4000 }, 'hello');
    const hello = await remote.waitFor((d) => d.text === 'hello', 'hello');
    const mapped = { address: hello.address, port: hello.port };
    await remote.send(mapped, 'before the flush');
    await sc.waitFor((d) => d.text === 'before the flush', 'the answer through the mapping');
    assert.ok((await topo.conntrack('cone')).some((e) => e.includes(`src=${topo.ip('c')}`)));

    await topo.flushConntrack(topo.natOf('c'));
    assert.deepEqual(await topo.conntrack('cone'), [], 'no mapping left');
    const c0 = await topo.counters('cone');
    await remote.send(mapped, 'after the flush');
    await until(async () => (await topo.counters('cone')).unsolicited === c0.unsolicited + 1, 'the NAT to drop the datagram');
    assert.deepEqual(texts(sc), ['before the flush']);

    const ss = await host.s!.bind();
    const m1 = await ss.stun(stun);
    assert.deepEqual(await ss.stun(stun), m1, 'the mapping holds while conntrack keeps it');
    await topo.flushConntrack('sym');
    const m2 = await ss.stun(stun);
    assert.equal(m2.address, m1.address);
    assert.notEqual(m2.port, m1.port, 'a new mapping after the flush (equal by chance once in ~64,500 runs)');
  });

  test('Linux masquerade: a LAN host keeps its first mapping for every destination, unless another host holds that port towards one', async (t) => {
    // The kernel's choice of source (nf_nat_core.c get_unique_tuple): 1. the mapping this LAN
    // address and port already has, if WAN:port -> destination is free; 2. else the local port
    // itself, if free towards that destination; 3. else another port. So two hosts on one local
    // port collide only per destination.
    const { topo, servers, host } = await start(t, { public: ['registry', 'other'], nats: { nat: { type: 'cone', hosts: ['alice', 'bob'] } } });
    const [stun, other] = servers as [Address, Address];
    const port = async (s: AgentSocket, server: Address) => {
      const m = await s.stun(server);
      assert.equal(m.address, topo.ip('nat'));
      return m.port;
    };
    // Same server first: bob cannot have 40000 towards it, gets X, and keeps X towards the other.
    const [a1, b1] = [await host.alice!.bind('0.0.0.0', 40000), await host.bob!.bind('0.0.0.0', 40000)];
    assert.equal(await port(a1, stun), 40000);
    const x = await port(b1, stun);
    assert.notEqual(x, 40000, 'WAN:40000 -> registry is alice');
    assert.equal(await port(b1, other), x, 'bob reuses his mapping although 40000 is free towards the other server');
    assert.equal(await port(a1, other), 40000);
    // Different servers first: each keeps 41000 towards its own, and towards the other's server
    // gets another port: both mappings now depend on the destination.
    const [a2, b2] = [await host.alice!.bind('0.0.0.0', 41000), await host.bob!.bind('0.0.0.0', 41000)];
    assert.equal(await port(a2, stun), 41000);
    assert.equal(await port(b2, other), 41000);
    assert.notEqual(await port(a2, other), 41000, 'WAN:41000 -> other is bob');
    assert.notEqual(await port(b2, stun), 41000, 'WAN:41000 -> registry is alice');
  });

  test('teardown leaves nothing: destroy(), SIGTERM of the building process, and cleanupStale() after its SIGKILL', async (t) => {
    const start0 = snapshot();
    const spec: TopologySpec = { public: ['registry'], nats: { nat: { type: 'cone', hosts: ['h'] } } };
    const topo = await buildTopology(spec);
    const sleeper = topo.spawn('h', ['sleep', '300']);
    assert.ok(topo.namespaces.every((n) => listNetns().includes(n)));
    await topo.destroy();
    assert.ok(sleeper.proc.exitCode !== null || sleeper.proc.signalCode !== null, 'processes in the namespaces are stopped');
    assert.deepEqual(snapshot(), start0);

    // A process that builds a topology with a process inside, then prints what it built.
    const child = () => {
      const code = `const n = require('./test/support/netns.ts');
        n.buildTopology(${JSON.stringify(spec)}).then((t) => {
          const p = t.spawn('h', ['sleep', '300']);
          console.log(JSON.stringify({ namespaces: t.namespaces, sleeper: p.proc.pid }));
          setInterval(() => {}, 1000);
        });`;
      const p = startProcess(process.execPath, ['--require', 'tsx/cjs', '-e', code], { cwd: resolve(__dirname, '../..') });
      t.after(() => p.stop()); // SIGTERM: its exit hook removes what it built
      return p;
    };
    const built = async (p: ReturnType<typeof child>) =>
      JSON.parse((await p.waitForLine(/^\{"namespaces".*$/, 20_000))[0]) as { namespaces: string[]; sleeper: number };

    const terminated = child();
    const a = await built(terminated);
    assert.ok(a.namespaces.every((n) => listNetns().includes(n)));
    await terminated.stop('SIGTERM');
    assert.equal((await terminated.exited).signal, 'SIGTERM', 'it still dies of the signal');
    assert.deepEqual(a.namespaces.filter((n) => listNetns().includes(n)), [], 'its exit hook removed the namespaces');
    await until(async () => processGone(a.sleeper), 'the process inside to die');

    const killed = child();
    const b = await built(killed);
    await killed.stop('SIGKILL');
    assert.ok(b.namespaces.every((n) => listNetns().includes(n)), 'SIGKILL leaves the namespaces behind');
    assert.ok(!processGone(b.sleeper), 'and the process inside running');
    const removed = cleanupStale(); // (and whatever else dead runs left)
    assert.deepEqual(b.namespaces.filter((n) => !removed.includes(n)), []);
    assert.deepEqual(b.namespaces.filter((n) => listNetns().includes(n)), []);
    await until(async () => processGone(b.sleeper), 'cleanupStale to kill the process inside');
    assert.deepEqual(snapshot(), start0);
  });
});
