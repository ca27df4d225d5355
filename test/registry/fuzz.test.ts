// Fuzz: thousands of random and mutated bodies to POST /v1/peers. The server must answer every one
// with a well-formed status and JSON, never crash, and still serve a valid request afterwards.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startRegistry, type RunningRegistry } from '../../src/registry/index';
import { seededRandom } from '../support/random';
import { call, keepAlive } from './http';


const SEEDS = [
  '{"name":"alice","port":4000}',
  '{"name":"Bob-1","port":65535,"addresses":["10.0.0.1","fe80::1"],"ip":"192.168.1.2"}',
  '{"name":"c.d_e","port":1,"ip":"127.0.1.1","addresses":[]}',
];
const ATOMS = ['{', '}', '[', ']', '"', ':', ',', 'null', 'true', '-1', '1e309', '0x10', '"__proto__"', '{"constructor":{}}', '\\u0000', '\u00ff', '"name"', '"port"', '"addresses"', '99999999999999999999'];

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
  if (kind === 4) s = JSON.stringify({ name: `n${i}`, port: Math.floor(rand() * 70_000) - 1000, addresses: Array.from({ length: Math.floor(rand() * 12) }, () => `${Math.floor(rand() * 300)}.0.0.1`) });
  return s;
}

let reg: RunningRegistry;
before(async () => {
  reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null });
});
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
      const r = await call(reg.url, 'POST', '/v1/peers', body, {}, { raw: true, agent: keepAlive });
      counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
      assert.ok([201, 400, 409, 413].includes(r.status), `seed ${seed} body #${i} ${JSON.stringify(String(body))} -> ${r.status} ${r.text}`);
      if (r.status === 201) {
        assert.equal(typeof r.json.token, 'string');
      } else {
        assert.match(r.json?.error?.code ?? '', /^[a-z_]+$/, `seed ${seed} body #${i}: ${r.text}`);
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker));
  assert.equal([...counts.values()].reduce((a, b) => a + b, 0), N);
  assert.ok((counts.get(400) ?? 0) > N / 2, `mostly invalid bodies: ${JSON.stringify([...counts])}`);

  const ok = await call(reg.url, 'POST', '/v1/peers', { name: 'after-fuzz', port: 8080 });
  assert.equal(ok.status, 201);
  assert.equal((await call(reg.url, 'GET', '/v1/peers/after-fuzz')).json.port, 8080);
  assert.equal((await call(reg.url, 'GET', '/healthz')).status, 200);
});
