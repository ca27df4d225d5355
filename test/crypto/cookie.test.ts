import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { PrivateKey } from '../../src/core/x25519';
import {
  COOKIE_SECRET_MS,
  CookieSecrets,
  cookieReplyKey,
  ipBytes,
  mac,
  mac1Key,
  openCookie,
  sealCookie,
  SEALED_COOKIE_BYTES,
  verifyMac,
} from '../../src/crypto/cookie';

const responder = PrivateKey.generate().publicKey;
const hmac16 = (key: Buffer, ...parts: Buffer[]) => {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest().subarray(0, 16);
};

test('mac1 is HMAC-SHA256(SHA-256("p2pshare mac1" || static), bytes) cut to 16', () => {
  const key = createHash('sha256').update('p2pshare mac1').update(responder).digest();
  assert.deepEqual(mac1Key(responder), key);
  const init = randomBytes(116);
  assert.deepEqual(mac(key, init), hmac16(key, init));
  assert.ok(verifyMac(key, init, hmac16(key, init)));
  assert.equal(verifyMac(key, init.subarray(1), hmac16(key, init)), false);
  assert.equal(verifyMac(mac1Key(PrivateKey.generate().publicKey), init, hmac16(key, init)), false);
  assert.equal(verifyMac(key, init, hmac16(key, init).subarray(0, 15)), false);
  assert.equal(verifyMac(key, init, Buffer.alloc(0)), false);
});

test('IP addresses as 16 bytes: IPv4 mapped, every IPv6 spelling the same', () => {
  assert.equal(ipBytes('1.2.3.4').toString('hex'), '00000000000000000000ffff01020304');
  assert.deepEqual(ipBytes('::ffff:1.2.3.4'), ipBytes('1.2.3.4'));
  assert.deepEqual(ipBytes('::ffff:102:304'), ipBytes('1.2.3.4'));
  assert.equal(ipBytes('::1').toString('hex'), '00000000000000000000000000000001');
  assert.equal(ipBytes('::').toString('hex'), '0'.repeat(32));
  assert.equal(ipBytes('2001:db8::8:800:200c:417a').toString('hex'), '20010db80000000000080800200c417a');
  assert.deepEqual(ipBytes('2001:DB8:0:0:8:800:200C:417A'), ipBytes('2001:db8::8:800:200c:417a'));
  assert.deepEqual(ipBytes('fe80::1%eth0'), ipBytes('fe80::1'));
  assert.equal(ipBytes('fe80::').toString('hex'), 'fe80' + '0'.repeat(28));
  for (const bad of ['', 'localhost', '1.2.3', '1::2::3', '::g']) assert.throws(() => ipBytes(bad), /not an IP address/);
});

test('cookie = HMAC-SHA256(secret, ip16 || port u16) cut to 16; valid under the current and the previous secret', () => {
  let now = 1_000;
  const secrets: Buffer[] = [];
  const jar = new CookieSecrets({ now: () => now, random: (n) => (secrets.push(randomBytes(n)), secrets.at(-1)!) });
  const port = Buffer.from([0x30, 0x39]);
  const cookie = jar.cookie('192.0.2.7', 12345);
  assert.deepEqual(cookie, hmac16(secrets[0]!, ipBytes('192.0.2.7'), port));
  assert.deepEqual(jar.cookie('::ffff:192.0.2.7', 12345), cookie);
  assert.notDeepEqual(jar.cookie('192.0.2.7', 12346), cookie);
  assert.notDeepEqual(jar.cookie('192.0.2.8', 12345), cookie);

  const init = randomBytes(132);
  const mac2 = mac(cookie, init);
  assert.ok(jar.checkMac2('192.0.2.7', 12345, init, mac2));
  assert.equal(jar.checkMac2('192.0.2.7', 12346, init, mac2), false);
  assert.equal(jar.checkMac2('192.0.2.7', 12345, init, Buffer.alloc(16)), false);

  now += COOKIE_SECRET_MS - 1;
  assert.deepEqual(jar.cookie('192.0.2.7', 12345), cookie);
  now += 1; // rotated: the old cookie is still valid as the previous secret's
  assert.notDeepEqual(jar.cookie('192.0.2.7', 12345), cookie);
  assert.equal(secrets.length, 2);
  assert.ok(jar.checkMac2('192.0.2.7', 12345, init, mac2));
  now += COOKIE_SECRET_MS; // rotated again: gone
  assert.equal(jar.checkMac2('192.0.2.7', 12345, init, mac2), false);
  const fresh = jar.cookie('192.0.2.7', 12345);
  now += 2 * COOKIE_SECRET_MS + 5; // two periods idle: neither the current nor the previous survives
  assert.equal(jar.checkMac2('192.0.2.7', 12345, init, mac(fresh, init)), false);
  assert.equal(secrets.length, 4);
});

test('a port outside 0..65535 throws', () => {
  const jar = new CookieSecrets();
  assert.throws(() => jar.cookie('1.2.3.4', 65536), /not a port/);
  assert.throws(() => jar.cookie('1.2.3.4', -1), /not a port/);
});

test('COOKIE_REPLY: sealed under SHA-256("p2pshare cookie" || static) with AD = mac1', () => {
  const key = cookieReplyKey(responder);
  assert.deepEqual(key, createHash('sha256').update('p2pshare cookie').update(responder).digest());
  const cookie = randomBytes(16);
  const mac1 = randomBytes(16);
  const sealed = sealCookie(key, cookie, mac1);
  assert.equal(sealed.length, SEALED_COOKIE_BYTES);
  assert.equal(SEALED_COOKIE_BYTES, 44);
  assert.deepEqual(openCookie(key, sealed, mac1), cookie);
  assert.notDeepEqual(sealCookie(key, cookie, mac1).subarray(0, 12), sealed.subarray(0, 12)); // fresh nonce
  assert.equal(openCookie(key, sealed, randomBytes(16)), null); // answers another INIT
  assert.equal(openCookie(cookieReplyKey(PrivateKey.generate().publicKey), sealed, mac1), null);
  for (let bit = 0; bit < sealed.length * 8; bit++) {
    const bad = Buffer.from(sealed);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    assert.equal(openCookie(key, bad, mac1), null, `bit ${bit}`);
  }
  for (let length = 0; length < 100; length++) assert.equal(openCookie(key, randomBytes(length), mac1), null);
  assert.throws(() => sealCookie(key, randomBytes(15), mac1), /16 bytes/);
});
