// Where the registry's time goes on its hot paths, with every limit at its default: one
// `serve-registry` process per route runs under --cpu-prof while autocannon drives it (lookups,
// heartbeats; registrations come from many loopback source addresses so the per-client limits
// stay on and are not what is measured), then the top functions by self time are printed.
//   node build.mjs && node --import tsx bench/registry-profile.ts   (PROFILE_SECONDS=5, PROFILE_REDIS=1)
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivateKey } from '../src/core/x25519';
import { RegistryClient } from '../src/registry/client';
import { CLI, TEST_CONFIG_HOME, startProcess } from '../test/support/cli';
import { redisServerAvailable, startRedis, type TestRedis } from '../test/support/redis';
import { registerFrom, sourceAddress } from '../test/registry/http-from';

const autocannon = createRequire(__filename)('autocannon') as (opts: Record<string, unknown>) => Promise<{ requests: { average: number } }>;
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 5);
const TOP = Number(process.env.PROFILE_TOP ?? 25);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Self time per function of a .cpuprofile, as percentages of all samples, largest first. */
function selfTimes(file: string): Array<[string, number]> {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const f = byId.get(id)!.callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(node_modules|dist|lib)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`;
    const dt = p.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  return [...self].map(([k, t]): [string, number] => [k, (100 * t) / total]).sort((a, b) => b[1] - a[1]);
}

async function profiled(label: string, extra: string[], drive: (url: string) => Promise<string>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'p2pshare-prof-'));
  try {
    const reg = startProcess(process.execPath, [`--cpu-prof`, `--cpu-prof-dir=${dir}`, CLI, 'serve-registry', '--host', '127.0.0.1', '--port', '0', '--stun-port', '0', '--ttl', '86400', ...extra], {
      env: { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: TEST_CONFIG_HOME },
    });
    const url = (await reg.waitForLine(/registry listening on (http:\/\/\S+)/))[1]!;
    let rate = '';
    try {
      rate = await drive(url);
    } finally {
      await reg.stop('SIGINT');
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    console.log(`\n## ${label}: ${rate}`);
    if (!file) return console.log('(no profile written)');
    for (const [k, pct] of selfTimes(join(dir, file)).slice(0, TOP)) console.log(`${pct.toFixed(1).padStart(5)} %  ${k}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  let redis: TestRedis | undefined;
  const stores: Array<{ name: string; args: string[] }> = [{ name: 'memory', args: [] }];
  if (process.env.PROFILE_REDIS !== '0' && redisServerAvailable()) {
    redis = await startRedis();
    stores.push({ name: 'redis', args: ['--redis', redis.url] });
  }
  try {
    for (const s of stores) {
      await profiled(`GET /v1/peers/{name}, ${s.name} store`, s.args, async (url) => {
        await new RegistryClient(url).register({ name: 'look', port: 4000 }, PrivateKey.generate());
        const r = await autocannon({ url: `${url}/v1/peers/look`, connections: 50, duration: SECONDS });
        return `${Math.round(r.requests.average)} req/s`;
      });
      await profiled(`POST /v1/peers/{name}/heartbeat, ${s.name} store`, s.args, async (url) => {
        const reg = await new RegistryClient(url).register({ name: 'beat', port: 4000 }, PrivateKey.generate());
        const r = await autocannon({
          url: `${url}/v1/peers/beat/heartbeat`, method: 'POST', headers: { authorization: `Bearer ${reg.token}` }, connections: 50, duration: SECONDS,
        });
        return `${Math.round(r.requests.average)} req/s`;
      });
      await profiled(`POST /v1/peers (challenge + registration), ${s.name} store`, s.args, async (url) => {
        const identity = PrivateKey.generate();
        const t0 = performance.now();
        let done = 0;
        // 40 names from each of 64 source addresses (under the 60 a minute and 64 live names each).
        await Promise.all(Array.from({ length: 64 }, async (_, a) => {
          for (let i = 0; i < 40; i++) {
            await registerFrom(url, sourceAddress(a), identity, { name: `${s.name}${a}x${i}`, port: 4000 });
            done++;
          }
        }));
        return `${Math.round(done / ((performance.now() - t0) / 1000))} registrations/s (${done})`;
      });
    }
  } finally {
    await redis?.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
