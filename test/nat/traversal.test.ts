// Across NATs, with real processes in network namespaces: a registry on the "public" network,
// owners and requesters behind nftables NAT routers (test/support/netns.ts says what each NAT
// type does). Every get ends byte-exact and says the route it took: punched through two cone
// NATs, relayed between two symmetric ones, direct over the LAN behind one NAT that does not
// hairpin, and still working after the owner's NAT forgot its mappings.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sha256 } from '../peer/support';
import { netnsSkip, type NatType } from '../support/netns';
import { KEEPALIVE_S, natNet } from './support';

const MiB = 1024 * 1024;

function twoNats(a: NatType, b: NatType) {
  return { public: ['reg'], nats: { na: { type: a, hosts: ['owner'] }, nb: { type: b, hosts: ['req'] } } };
}

describe('across NATs', { skip: netnsSkip() }, () => {
  test('cone <-> cone: the registry introduces, both punch, the get is punched and byte-exact', async (t) => {
    const net = await natNet(t, twoNats('cone', 'cone'));
    const { sha256: digest } = await net.owner('owner', 'olive', 'photo.bin', 3 * MiB);
    const r = await net.get('req', 'olive', 'photo.bin');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out!.route, 'punched');
    assert.equal(r.out!.via, 'udp', 'a punched route carries UDP only');
    assert.equal(await sha256(r.out!.path), digest);
    const listed = await net.files('req', 'olive');
    assert.deepEqual([listed.code, listed.names], [0, ['photo.bin']], listed.stderr);
    const c = await net.topo.counters('na');
    assert.ok(c.unsolicited > 0, "the owner's NAT really dropped the first, unintroduced tries");
  });

  test('symmetric <-> symmetric: no hole opens, the registry relays, byte-exact', async (t) => {
    const net = await natNet(t, twoNats('symmetric', 'symmetric'));
    const { sha256: digest } = await net.owner('owner', 'sym', 'doc.bin', 2 * MiB);
    const r = await net.get('req', 'sym', 'doc.bin');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out!.route, 'relayed');
    assert.equal(await sha256(r.out!.path), digest);
    const listed = await net.files('req', 'sym');
    assert.deepEqual([listed.code, listed.names], [0, ['doc.bin']], listed.stderr);
    const tcp = await net.get('req', 'sym', 'doc.bin', ['--via', 'tcp']);
    assert.notEqual(tcp.code, 0);
    assert.match(tcp.stderr, /through the registry's relay, where TCP cannot go/);
  });

  test('cone <-> symmetric: punched or relayed, byte-exact either way', async (t) => {
    const net = await natNet(t, twoNats('cone', 'symmetric'));
    const { sha256: digest } = await net.owner('owner', 'mixed', 'a.bin', 1 * MiB);
    const r = await net.get('req', 'mixed', 'a.bin');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(['punched', 'relayed'].includes(r.out!.route), r.out!.route);
    assert.equal(await sha256(r.out!.path), digest);
  });

  test('two hosts behind one NAT that does not hairpin meet directly over the LAN', async (t) => {
    const net = await natNet(t, { public: ['reg'], nats: { home: { type: 'cone', hosts: ['owner', 'req'] } } });
    const { sha256: digest } = await net.owner('owner', 'neighbour', 'b.bin', 1 * MiB);
    const r = await net.get('req', 'neighbour', 'b.bin');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out!.route, 'direct');
    assert.equal(await sha256(r.out!.path), digest);
    assert.ok((await net.topo.counters('home')).hairpin > 0, 'the way through the NAT was really tried and dropped');
  });

  test("the owner's NAT forgets its mappings (conntrack -F): within one keepalive the next get works", async (t) => {
    const net = await natNet(t, twoNats('cone', 'cone'));
    const { sha256: digest } = await net.owner('owner', 'forgetful', 'c.bin', 1 * MiB);
    assert.equal((await net.get('req', 'forgetful', 'c.bin')).code, 0);
    const towardsRequester = (lines: string[]) => lines.filter((l) => l.includes(net.topo.ip('nb')));
    assert.ok(towardsRequester(await net.topo.conntrack('na')).length > 0, 'the punched mapping exists before');
    await new Promise((r) => setTimeout(r, 3500)); // the owner's punches for that introduction are over
    await net.topo.flushConntrack('na');
    // Only the owner's next keepalive may have made a mapping since: towards the registry alone.
    assert.deepEqual(towardsRequester(await net.topo.conntrack('na')), [], 'the mappings are really gone');
    await new Promise((r) => setTimeout(r, (KEEPALIVE_S + 1) * 1000));
    const r = await net.get('req', 'forgetful', 'c.bin');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256(r.out!.path), digest);
  });
});

describe('across NATs, the registry side', { skip: netnsSkip() }, () => {
  test('the registry restarts (memory store): the owner registers and keeps alive again by itself, the next get works', async (t) => {
    const net = await natNet(t, twoNats('cone', 'cone'), { registryArgs: ['--ttl', '6'] });
    const { sha256: digest } = await net.owner('owner', 'phoenix', 'd.bin', 1 * MiB);
    assert.equal((await net.get('req', 'phoenix', 'd.bin')).code, 0);
    assert.equal(await net.registries[0]!.stop('SIGTERM'), 0);
    const restarted = await net.restartRegistry(0);
    await restarted.waitForLine(/registry listening on/, 30_000);
    // The owner heartbeats every ttl/3 = 2 s: a 404 makes it register again, and keep alive.
    let r = await net.get('req', 'phoenix', 'd.bin');
    for (let i = 0; i < 10 && r.code !== 0; i++) {
      await new Promise((res) => setTimeout(res, 1000));
      r = await net.get('req', 'phoenix', 'd.bin');
    }
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out!.route, 'punched');
    assert.equal(await sha256(r.out!.path), digest);
  });

  test('two registries on one Redis, owner and requester kept alive at different ones: introduced, byte-exact', async (t) => {
    const spec = { public: ['reg', 'reg2'], nats: { na: { type: 'cone' as const, hosts: ['owner'] }, nb: { type: 'cone' as const, hosts: ['req'] } } };
    const net = await natNet(t, spec, { registries: 2, redis: true });
    const { sha256: digest } = await net.owner('owner', 'far', 'e.bin', 1 * MiB);
    // The requester is a peer too, kept alive at the second registry.
    await net.owner('req', 'near', 'own.bin', 1024, [], 1);
    const r = await net.get('req', 'far', 'e.bin', [], 1);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out!.route, 'punched');
    assert.equal(await sha256(r.out!.path), digest);
  });
});
