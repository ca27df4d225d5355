// Which addresses a registration may name: its own (observed) address or a private one, never a
// third party's public address. Pure rules, then through real HTTP from 127.0.0.x clients.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { classifyAddress } from '../../src/core/addresses';
import { clientKey, judgeClaim } from '../../src/registry/address-policy';
import type { RunningRegistry } from '../../src/registry/index';
import { checkRegistration } from '../../src/registry/validate';
import { call, register } from './http';
import { errorCode, storeCases } from './stores';

test('classes: private (RFC 1918, CGNAT, ULA), link-local, loopback, unspecified, special, public', () => {
  const cases: Array<[string, ReturnType<typeof classifyAddress>]> = [
    ['10.1.2.3', 'private'], ['172.16.0.1', 'private'], ['172.31.255.254', 'private'], ['192.168.1.20', 'private'],
    ['100.64.0.1', 'private'], ['100.127.255.254', 'private'], ['fd12:3456::1', 'private'], ['fc00::1', 'private'],
    ['::ffff:192.168.0.1', 'private'],
    ['169.254.169.254', 'link_local'], ['169.254.0.1', 'link_local'], ['fe80::1', 'link_local'], ['febf::1', 'link_local'],
    ['127.0.0.1', 'loopback'], ['127.1.2.3', 'loopback'], ['::1', 'loopback'],
    ['0.0.0.0', 'unspecified'], ['::', 'unspecified'],
    ['0.1.2.3', 'special'], ['224.0.0.1', 'special'], ['239.255.255.250', 'special'], ['240.0.0.1', 'special'],
    ['255.255.255.255', 'special'], ['ff02::1', 'special'], ['fec0::1', 'special'],
    ['8.8.8.8', 'public'], ['172.32.0.1', 'public'], ['172.15.255.255', 'public'], ['100.128.0.1', 'public'],
    ['100.63.255.255', 'public'], ['192.169.0.1', 'public'], ['2001:4860:4860::8888', 'public'], ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::808:808', 'public'],
  ];
  for (const [ip, cls] of cases) assert.equal(classifyAddress(ip), cls, ip);
});

test('claims: own address and private ones kept, third parties and link-local refused with a clear message', () => {
  assert.deepEqual(judgeClaim('203.0.113.9', '203.0.113.9'), { ok: true, address: '203.0.113.9' });
  assert.deepEqual(judgeClaim('10.0.0.2', '203.0.113.9'), { ok: true, address: '10.0.0.2' });
  assert.deepEqual(judgeClaim('100.64.1.1', '203.0.113.9'), { ok: true, address: '100.64.1.1' });
  assert.deepEqual(judgeClaim('127.0.1.1', '127.0.0.1'), { ok: true, address: '127.0.1.1' }, 'loopback from a loopback client');
  assert.deepEqual(judgeClaim('127.0.1.1', '203.0.113.9'), { ok: true, address: '203.0.113.9' }, 'loopback from a remote client: its own address');
  assert.deepEqual(judgeClaim('0.0.0.0', '203.0.113.9'), { ok: true, address: '203.0.113.9' });
  for (const [claim, observed, says] of [
    ['8.8.8.8', '203.0.113.9', /8\.8\.8\.8 is neither the address this request came from \(203\.0\.113\.9\) nor a private/],
    ['8.8.8.8', '127.0.0.1', /neither the address this request came from/],
    ['198.51.100.7', '10.0.0.1', /neither/],
    ['169.254.169.254', '203.0.113.9', /link-local/],
    ['fe80::1', '127.0.0.1', /link-local/],
    ['224.0.0.1', '127.0.0.1', /not a unicast host address/],
  ] as const) {
    const j = judgeClaim(claim, observed);
    assert.equal(j.ok, false, claim);
    assert.match((j as { message: string }).message, says);
  }
  const refused = checkRegistration({ name: 'p', port: 1, ip: '10.0.0.1', addresses: ['192.168.0.2', '8.8.4.4'] }, '198.51.100.4');
  assert.equal(refused.ok, false);
  assert.ok('addressRefused' in refused && refused.addressRefused, 'told apart from a malformed body');
  assert.match((refused as { message: string }).message, /8\.8\.4\.4/);
  const malformed = checkRegistration({ name: 'p', port: 1, ip: 'nope' }, '198.51.100.4');
  assert.equal(malformed.ok, false);
  assert.ok(!('addressRefused' in malformed));
});

test('clients: an IPv4 address each, an IPv6 /64 each', () => {
  assert.equal(clientKey('127.0.0.2'), '127.0.0.2');
  assert.equal(clientKey('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64', 'the same /64, the same client');
  assert.notEqual(clientKey('2001:db8:1:3::1'), clientKey('2001:db8:1:2::1'));
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(clientKey('::1'), '0:0:0:0::/64');
});

const cases = storeCases();
for (const c of cases) {
  describe(`registered addresses on the ${c.name} store`, { skip: c.skip }, () => {
    let reg: RunningRegistry;
    before(async () => {
      reg = await c.start();
    });

    test('8.8.8.8 and 169.254.169.254 are refused with 400 address_not_allowed, as ip or in addresses; nothing is stored', async () => {
      for (const [i, fields] of [
        { ip: '8.8.8.8' },
        { ip: '169.254.169.254' },
        { addresses: ['10.0.0.1', '8.8.8.8'] },
        { addresses: ['169.254.169.254'] },
        { ip: '10.0.0.1', addresses: ['fe80::1'] },
        { ip: '2001:4860:4860::8888' },
      ].entries()) {
        const name = `victim-${i}`;
        const r = await register(reg.url, { name, port: 53, ...fields }, undefined, { localAddress: '127.0.0.2' });
        assert.equal(r.status, 400, `${JSON.stringify(fields)}: ${r.text}`);
        assert.equal(errorCode(r.json), 'address_not_allowed');
        assert.match(r.json.error.message, /neither the address this request came from \(127\.0\.0\.2\)|link-local/);
        assert.equal((await call(reg.url, 'GET', `/v1/peers/${name}`)).status, 404, 'nothing registered');
      }
    });

    test('the observed address, private LAN addresses and loopback from a loopback client are accepted', async () => {
      const r = await register(reg.url, { name: 'lan-peer', port: 4000, ip: '127.0.0.3', addresses: ['192.168.1.20', '100.64.0.7', 'fd00::7', '10.0.0.9'] }, undefined, { localAddress: '127.0.0.3' });
      assert.equal(r.status, 201, r.text);
      const g = await call(reg.url, 'GET', '/v1/peers/lan-peer');
      assert.equal(g.json.ip, '127.0.0.3');
      assert.deepEqual(g.json.addresses, ['192.168.1.20', '100.64.0.7', 'fd00::7', '10.0.0.9']);
      const other = await register(reg.url, { name: 'lo-peer', port: 4000, ip: '127.0.0.9' }, undefined, { localAddress: '127.0.0.3' });
      assert.equal(other.status, 201, 'another loopback address, from a loopback client');
    });
  });
}
