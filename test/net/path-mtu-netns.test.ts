// Path MTU discovery on real kernel paths (PROTOCOL.md 6.10): requester A and owner B in network
// namespaces, a router R between them whose link towards one side has a smaller MTU. Larger
// probes or answers really are dropped by R (its IpFragFails counter: DF was set, it may not
// fragment) and the search settles at the largest size that crosses; no answer was fragmented
// by the owner's kernel even after R's ICMP "fragmentation needed" lowered its path MTU. Needs
// root and `ip`; skipped loudly otherwise (required under CI=true).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import type { PathMtuState } from '../../src/net/path-mtu';
import { startProcess } from '../support/cli';
import { cleanupStale, NETNS_PREFIX, netnsSkip } from '../support/netns';

const REPO_ROOT = resolve(__dirname, '../..');
const PEER = resolve(REPO_ROOT, 'test/support/netns-mtu-peer.ts');

interface Mtus {
  /** A's interface, R's interface towards A, R's interface towards B, B's interface. */
  a: number;
  ra: number;
  rb: number;
  b: number;
  /**
   * When set, a second A - R link of this MTU (both ends) that R routes everything for A over,
   * while A still sends over its first link: a path that is smaller towards the requester only.
   */
  back?: number;
}

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

/** Builds A - R - B (10.77.1.0/24 and 10.77.2.0/24) with these MTUs; returns the namespaces (remove with removeNs). */
function build(m: Mtus): { a: string; r: string; b: string } {
  const stem = `${NETNS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}-`;
  const ns = { a: `${stem}a`, r: `${stem}r`, b: `${stem}b` };
  try {
    for (const n of Object.values(ns)) ip(['netns', 'add', n]);
    ip(['-n', ns.a, 'link', 'add', 'eth0', 'mtu', String(m.a), 'type', 'veth', 'peer', 'name', 'ra', 'mtu', String(m.ra), 'netns', ns.r]);
    ip(['-n', ns.r, 'link', 'add', 'rb', 'mtu', String(m.rb), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(m.b), 'netns', ns.b]);
    ip(['-n', ns.a, 'addr', 'add', '10.77.1.2/24', 'dev', 'eth0']);
    ip(['-n', ns.r, 'addr', 'add', '10.77.1.1/24', 'dev', 'ra']);
    ip(['-n', ns.r, 'addr', 'add', '10.77.2.1/24', 'dev', 'rb']);
    ip(['-n', ns.b, 'addr', 'add', '10.77.2.2/24', 'dev', 'eth0']);
    for (const [n, dev] of [[ns.a, 'eth0'], [ns.r, 'ra'], [ns.r, 'rb'], [ns.b, 'eth0'], [ns.a, 'lo'], [ns.r, 'lo'], [ns.b, 'lo']] as const) ip(['-n', n, 'link', 'set', dev, 'up']);
    ip(['-n', ns.a, 'route', 'add', 'default', 'via', '10.77.1.1']);
    ip(['-n', ns.b, 'route', 'add', 'default', 'via', '10.77.2.1']);
    if (m.back !== undefined) {
      ip(['-n', ns.a, 'link', 'add', 'eth1', 'mtu', String(m.back), 'type', 'veth', 'peer', 'name', 'back', 'mtu', String(m.back), 'netns', ns.r]);
      ip(['-n', ns.a, 'link', 'set', 'eth1', 'up']);
      ip(['-n', ns.r, 'link', 'set', 'back', 'up']);
      ip(['-n', ns.r, 'route', 'add', '10.77.1.2/32', 'dev', 'back']);
      // A takes its address's datagrams on eth1 though its route back is eth0.
      for (const dev of ['all', 'default', 'eth1']) spawnSync('ip', ['netns', 'exec', ns.a, 'sysctl', '-qw', `net.ipv4.conf.${dev}.rp_filter=0`]);
    }
    const fwd = spawnSync('ip', ['netns', 'exec', ns.r, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    if (fwd.status !== 0) throw new Error('cannot enable forwarding in the router namespace');
  } catch (err) {
    removeNs(ns);
    throw err;
  }
  return ns;
}

function removeNs(ns: { a: string; r: string; b: string }): void {
  for (const n of Object.values(ns)) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
}

/** One counter of the Ip: lines of /proc/net/snmp inside a namespace (FragFails, FragCreates: nstat calls them IpFrag...). */
function ipCounter(ns: string, name: string): number {
  const text = spawnSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp'], { encoding: 'utf8' }).stdout;
  const [head, values] = text.split('\n').filter((l) => l.startsWith('Ip: '));
  const i = head!.split(' ').indexOf(name);
  return Number(values!.split(' ')[i]);
}

/** Runs the owner in B and a requester's search in A; the search's final state. */
async function search(ns: { a: string; b: string }): Promise<PathMtuState> {
  const owner = startProcess('ip', ['netns', 'exec', ns.b, process.execPath, '--require', 'tsx/cjs', PEER, 'owner', '10.77.2.2'], { cwd: REPO_ROOT, stdin: 'pipe', label: 'mtu owner' });
  try {
    const [line] = await owner.waitForLine(/^\{.*\}$/, 20_000);
    const { port, key } = JSON.parse(line) as { port: number; key: string };
    const requester = startProcess('ip', ['netns', 'exec', ns.a, process.execPath, '--require', 'tsx/cjs', PEER, 'requester', '10.77.1.2', '10.77.2.2', String(port), key], { cwd: REPO_ROOT, label: 'mtu requester' });
    try {
      const [state] = await requester.waitForLine(/^\{.*\}$/, 30_000);
      return JSON.parse(state) as PathMtuState;
    } finally {
      requester.proc.kill();
    }
  } finally {
    owner.proc.stdin?.end();
    owner.proc.kill();
  }
}

describe('path MTU discovery through a router with a smaller link', { skip: netnsSkip() }, () => {
  cleanupStale();

  test('a 1400-byte link on the way: probes above 1372 bytes are dropped by the router (DF) and the search settles at 1372', async () => {
    const ns = build({ a: 1500, ra: 1500, rb: 1400, b: 1400 });
    try {
      const s = await search(ns);
      assert.equal(s.datagram, 1372, JSON.stringify(s));
      assert.deepEqual(s.failed, [1392, 1452, 1464, 1472], 'sizes above the link failed; A probes no more than its 1500-byte first hop');
      assert.ok(ipCounter(ns.r, 'FragFails') >= 1, 'the router dropped a larger probe: DF was set, it may not fragment');
      // Its ICMP comes back before the next probe leaves, so A's kernel fragments the other probes
      // and every retry (Node cannot set DF): they reach B whole, but B's first hop is 1400 bytes
      // and it never answers a probe its own kernel would fragment.
      assert.ok(ipCounter(ns.a, 'FragCreates') > 0, "A's kernel fragmented later probes (IP_PMTUDISC_WANT after the ICMP)");
      assert.equal(ipCounter(ns.b, 'FragCreates'), 0, 'B fragmented nothing');
    } finally {
      removeNs(ns);
    }
  });

  test('a 1400-byte link only towards the requester: the first larger answer is dropped, the fragmented ones after it prove nothing: 1372', async () => {
    // A -> B carries 1472 bytes; R sends B -> A over a 1400-byte link.
    const ns = build({ a: 1500, ra: 1500, rb: 1500, b: 1500, back: 1400 });
    try {
      const s = await search(ns);
      assert.equal(s.datagram, 1372, JSON.stringify(s));
      // Each of the four larger answers (1392, 1452, 1464, 1472) was either dropped by R for its
      // size (DF set) or, once R's ICMP had lowered B's path MTU to A, fragmented by B's kernel and
      // delivered whole. Retries got no answer at all. None of the fragmented ones counted.
      const dropped = ipCounter(ns.r, 'FragFails');
      const fragmented = ipCounter(ns.b, 'FragOKs');
      assert.equal(dropped + fragmented, 4, `R dropped ${dropped}, B fragmented ${fragmented}`);
      assert.ok(dropped >= 1, 'the router dropped the first larger answer');
      assert.equal(s.failed[0], 1392, 'the smallest larger size failed: its answer was dropped and its retries got none');
    } finally {
      removeNs(ns);
    }
  });

  test('a jumbo path (9000 on every link): the search confirms 8972', async () => {
    const ns = build({ a: 9000, ra: 9000, rb: 9000, b: 9000 });
    try {
      const s = await search(ns);
      assert.equal(s.datagram, 8972, JSON.stringify(s));
      assert.deepEqual(s.failed, []);
    } finally {
      removeNs(ns);
    }
  });
});
