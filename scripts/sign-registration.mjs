// Prints a POST /v1/peers body signed for the registry API (README.md, "The registry API with
// curl"): the body given, plus publicKey and a proof over a fresh challenge. Node's crypto only,
// so it doubles as a reference for clients written in other languages.
//   node scripts/sign-registration.mjs REGISTRY_URL KEYFILE '{"name":"alice","port":4000}'
// KEYFILE holds the X25519 private key as a JWK; it is created (mode 0600) when missing.
import { createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const [registry, keyFile, bodyText] = process.argv.slice(2);
if (!registry || !keyFile || !bodyText) {
  console.error('usage: node scripts/sign-registration.mjs REGISTRY_URL KEYFILE BODY_JSON');
  process.exit(2);
}
if (!existsSync(keyFile)) {
  const jwk = generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' });
  writeFileSync(keyFile, `${JSON.stringify(jwk)}\n`, { mode: 0o600 });
}
const privateKey = createPrivateKey({ key: JSON.parse(readFileSync(keyFile, 'utf8')), format: 'jwk' });
const publicKey = createPublicKey(privateKey).export({ format: 'jwk' }).x;

const answer = await fetch(new URL('/v1/challenge', registry));
if (answer.status !== 200) throw new Error(`GET /v1/challenge: HTTP ${answer.status} ${await answer.text()}`);
const { challenge, registryKey } = await answer.json();

const body = JSON.parse(bodyText);
const shared = diffieHellman({ privateKey, publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: registryKey }, format: 'jwk' }) });
const macKey = createHash('sha256').update('p2pshare register v1').update(shared).digest();
const signed = JSON.stringify([body.name, body.port, body.ip ?? null, body.addresses ?? [], publicKey]);
const mac = createHmac('sha256', macKey).update(Buffer.from(challenge, 'base64url')).update(signed, 'utf8').digest('base64url');
console.log(JSON.stringify({ ...body, publicKey, proof: { challenge, mac } }));
