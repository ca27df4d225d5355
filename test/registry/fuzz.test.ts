// Fuzz: thousands of random and mutated bodies to POST /v1/peers. The server must answer every one
// with a well-formed status and JSON, never crash, never accept a signed field that was changed,
// and still serve a valid request afterwards.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PrivateKey } from '../../src/core/x25519';
import { startRegistry, type RunningRegistry } from '../../src/registry/index';
import { seededRandom } from '../support/random';
import { call, keepAlive, register, signedBody } from './http';


const FIELDS = [
  { name: 'alice', port: 4000 },
  { name: 'Bob-1', port: 65535, addresses: ['10.0.0.1', 'fd00::1'], ip: '192.168.1.2' },
  { name: 'c.d_e', port: 1, ip: '127.0.1.1', addresses: [] },
];
/** The FIELDS, each signed over its own challenge (filled in before the test). */
const SEEDS: string[] = [];
const ATOMS = [
  '{', '}', '[', ']', '"', ':', ',', 'null', 'true', '-1', '1e309', '0x10', '"__proto__"', '{"constructor":{}}', '\\u0000', '\u00ff',
  '"name"', '"port"', '"addresses"', '99999999999999999999', '"publicKey"', '"proof"', '"challenge"', '"mac"', '"AAAA"', '=', '+', '/',
];

/** Something in the place of a key, challenge or mac: right or wrong length, wrong alphabet, wrong type. */
function randomB64(rand: () => number): unknown {
  switch (Math.floor(rand() * 6)) {
    case 0: return Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256))).toString('base64url');
    case 1: return Buffer.from(Array.from({ length: 32 }, () => Math.floor(rand() * 256))).toString('base64url');
    case 2: return Buffer.from(Array.from({ length: 40 }, () => Math.floor(rand() * 256))).toString('base64');
    case 3: return Math.floor(rand() * 1e6);
    case 4: return rand() < 0.5 ? null : [];
    default: return 'A'.repeat(Math.floor(rand() * 60));
  }
}

function mutate(rand: () => number, s: string): string {
  const at = Math.floor(rand() * (s.length + 1));
  switch (Math.floor(rand() * 6)) {
    case 0: return s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 4));
    case 1: return s.slice(0, at) + ATOMS[Math.floor(rand() * ATOMS.length)] + s.slice(at);
    case 2: return s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + s.slice(at + 1);
    case 3: return s.slice(0, at);
    case 4: return s.slice(0, at) + s.slice(at).repeat(2 + Math.floor(rand() * 3));
    default: return s.replace(/\d+/, String(Math.floor(rand() * 200_000) - 50_000));
  }
}

function randomBody(rand: () => number, i: number): string | Buffer {
  const kind = i % 5;
  if (kind === 0) return Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)));
  if (kind === 1) return '['.repeat(Math.floor(rand() * 5000)); // deep nesting
  let s = SEEDS[Math.floor(rand() * SEEDS.length)]!;
  const rounds = 1 + Math.floor(rand() * 4);
  for (let r = 0; r < rounds; r++) s = mutate(rand, s);
  if (kind === 4) {
    s = JSON.stringify({
      name: `n${i}`, port: Math.floor(rand() * 70_000) - 1000, addresses: Array.from({ length: Math.floor(rand() * 12) }, () => `${Math.floor(rand() * 300)}.0.0.1`),
      publicKey: randomB64(rand), proof: rand() < 0.2 ? randomB64(rand) : { challenge: randomB64(rand), mac: randomB64(rand) },
    });
  }
  return s;
}

let reg: RunningRegistry;
before(async () => {
  reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null });
  const key = PrivateKey.generate();
  for (const f of FIELDS) SEEDS.push(JSON.stringify(await signedBody(reg.url, f, key)));
});

/** The signed fields of a body, as the proof covers them. */
function signedPart(b: any): string {
  return JSON.stringify([b?.name, b?.port, b?.ip ?? null, b?.addresses ?? [], b?.publicKey, b?.proof?.challenge]);
}
after(async () => {
  await reg.close();
});

test('3000 random and mutated registration bodies: every answer well-formed, server still healthy', async () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const rand = seededRandom(seed); // the seed is printed on failure, so a run can be replayed
  const counts = new Map<number, number>();
  const N = 3000;
  let next = 0;
  async function worker(): Promise<void> {
    while (next < N) {
      const i = next++;
      const body = randomBody(rand, i);
      // From 64 source addresses: as many clients, each well within the default registrations per minute.
      const r = await call(reg.url, 'POST', '/v1/peers', body, {}, { raw: true, agent: keepAlive, localAddress: `127.0.0.${2 + (i % 64)}` });
      counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
      assert.ok([201, 400, 401, 403, 409, 413].includes(r.status), `seed ${seed} body #${i} ${JSON.stringify(String(body))} -> ${r.status} ${r.text}`);
      if (r.status === 201) {
        assert.equal(typeof r.json.token, 'string');
        // Accepted only as signed: a mutation that left every signed field (and the challenge) as it was.
        const sent = JSON.parse(String(body));
        assert.ok(SEEDS.some((seedBody) => signedPart(JSON.parse(seedBody)) === signedPart(sent)), `seed ${seed} body #${i} accepted: ${String(body)}`);
      } else {
        assert.match(r.json?.error?.code ?? '', /^[a-z_]+$/, `seed ${seed} body #${i}: ${r.text}`);
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker));
  assert.equal([...counts.values()].reduce((a, b) => a + b, 0), N);
  assert.ok((counts.get(400) ?? 0) > N / 2, `mostly invalid bodies: ${JSON.stringify([...counts])}`);
  assert.ok((counts.get(403) ?? 0) + (counts.get(401) ?? 0) > 0, `some bodies got as far as the proof: ${JSON.stringify([...counts])}`);
  assert.ok((counts.get(201) ?? 0) <= SEEDS.length, 'each challenge serves one registration');

  const ok = await register(reg.url, { name: 'after-fuzz', port: 8080 });
  assert.equal(ok.status, 201);
  assert.equal((await call(reg.url, 'GET', '/v1/peers/after-fuzz')).json.port, 8080);
  assert.equal((await call(reg.url, 'GET', '/healthz')).status, 200);
});
