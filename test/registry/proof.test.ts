// The registration proof exactly as README.md documents it, recomputed here with node:crypto
// alone (not through src/registry/proof.ts), so that a client written from the README agrees.
import assert from 'node:assert/strict';
import { createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { PrivateKey } from '../../src/core/x25519';
import {
  checkChallenge, deriveRegistryKeys, fromBase64url, issueChallenge, signRegistration, verifyRegistrationMac,
} from '../../src/registry/proof';

const hmac = (key: Buffer, data: Buffer | string) => createHmac('sha256', key).update(data).digest();

/** An X25519 KeyObject pair from 32 raw private bytes (PKCS#8, RFC 8410). */
function x25519FromRaw(raw: Buffer) {
  const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), raw]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicRaw: Buffer.from(privateKey.export({ format: 'jwk' }).x!, 'base64url') };
}

test('registry keys: X25519 key = HMAC-SHA256(secret, "p2pshare registry x25519"), challenge key likewise', () => {
  const secret = randomBytes(32);
  const keys = deriveRegistryKeys(secret);
  assert.deepEqual(keys.x25519.publicKey, x25519FromRaw(hmac(secret, 'p2pshare registry x25519')).publicRaw);
  assert.deepEqual(keys.challengeKey, hmac(secret, 'p2pshare registry challenge'));
  assert.notDeepEqual(deriveRegistryKeys(randomBytes(32)).x25519.publicKey, keys.x25519.publicKey);
});

test('challenge: u64 expiry | 16 random | first 16 bytes of HMAC(challengeKey, first 24); valid strictly before expiry', () => {
  const challengeKey = randomBytes(32);
  const random = randomBytes(16);
  const expiry = 1_900_000_000_123;
  const head = Buffer.alloc(8);
  head.writeBigUInt64BE(BigInt(expiry));
  const want = Buffer.concat([head, random, hmac(challengeKey, Buffer.concat([head, random])).subarray(0, 16)]);
  const got = issueChallenge(challengeKey, expiry, random);
  assert.deepEqual(got, want);
  assert.equal(checkChallenge(challengeKey, got, expiry - 1), 'ok');
  assert.equal(checkChallenge(challengeKey, got, expiry), 'expired');
  assert.equal(checkChallenge(randomBytes(32), got, expiry - 1), 'forged');
  for (let at = 0; at < 40; at++) {
    const bad: Buffer = Buffer.from(got);
    bad[at]! ^= 0x10;
    assert.equal(checkChallenge(challengeKey, bad, 0), 'forged', `byte ${at}`);
  }
  assert.equal(checkChallenge(challengeKey, got.subarray(0, 39), 0), 'forged');
});

test('mac = HMAC-SHA256(SHA-256("p2pshare register v1" || X25519), challenge || JSON.stringify([name, port, ip ?? null, addresses ?? [], publicKey]))', () => {
  const registry = deriveRegistryKeys(randomBytes(32));
  const challenge = issueChallenge(registry.challengeKey, Date.now() + 60_000, randomBytes(16));
  const peer = generateKeyPairSync('x25519');
  const peerRaw = Buffer.from(peer.privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const identity = PrivateKey.fromRaw(peerRaw);
  const publicKey = identity.publicKey.toString('base64url');
  assert.equal(publicKey, peer.publicKey.export({ format: 'jwk' }).x);

  const shared = diffieHellman({
    privateKey: peer.privateKey,
    publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: registry.x25519.publicKey.toString('base64url') }, format: 'jwk' }),
  });
  const macKey = createHash('sha256').update('p2pshare register v1').update(shared).digest();
  for (const fields of [
    { name: 'Alice', port: 4000 },
    { name: 'b.o-b_', port: 65535, ip: '10.0.0.1', addresses: ['10.0.0.2', 'fe80::1'] },
  ]) {
    const f = fields as { name: string; port: number; ip?: string; addresses?: string[] };
    const text = JSON.stringify([f.name, f.port, f.ip ?? null, f.addresses ?? [], publicKey]);
    const want = hmac(macKey, Buffer.concat([challenge, Buffer.from(text, 'utf8')]));
    const body = signRegistration(identity, { challenge: challenge.toString('base64url'), registryKey: registry.x25519.publicKey.toString('base64url') }, f);
    assert.ok(body);
    assert.deepEqual(body, { ...f, publicKey, proof: { challenge: challenge.toString('base64url'), mac: want.toString('base64url') } });
    assert.equal(verifyRegistrationMac(registry.x25519, identity.publicKey, challenge, { ...f, publicKey }, want), true);
    assert.equal(verifyRegistrationMac(registry.x25519, identity.publicKey, challenge, { ...f, port: f.port - 1, publicKey }, want), false);
    assert.equal(verifyRegistrationMac(registry.x25519, PrivateKey.generate().publicKey, challenge, { ...f, publicKey }, want), false);
  }
  assert.equal(verifyRegistrationMac(registry.x25519, Buffer.alloc(32), challenge, { name: 'x', port: 1, publicKey }, Buffer.alloc(32)), 'bad_key');
});

test('base64url: exactly the canonical spelling of exactly the length', () => {
  const key = randomBytes(32);
  const text = key.toString('base64url');
  assert.deepEqual(fromBase64url(text, 32), key);
  assert.equal(fromBase64url(text, 31), null);
  assert.equal(fromBase64url(`${text}=`, 32), null);
  assert.equal(fromBase64url(text.slice(1), 32), null);
  // The same bytes in standard base64: refused when it uses '+' or '/', the same text otherwise
  // (a quarter of random keys need neither).
  assert.deepEqual(fromBase64url(key.toString('base64').replace(/=+$/, ''), 32), /[+/]/.test(key.toString('base64')) ? null : key);
  const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  assert.equal(fromBase64url(text.slice(0, 42) + B64URL[B64URL.indexOf(text[42]!) ^ 2], 32), null, 'unused low bits set');
  for (const v of [undefined, null, 42, [text], { text }]) assert.equal(fromBase64url(v, 32), null);
});
