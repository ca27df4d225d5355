// A 2,000-connection slowloris against a real `serve-registry` process started under
// `ulimit -n 1024`, from 20 source addresses (127.0.0.10-29), each connection trickling header
// bytes and never finishing, reopened after the server cuts it (slowloris-attacker.mjs, a process
// of its own, so that the test's own client is not slowed by it). During the attack a fresh client
// registers and looks itself up within 2 s; every abusive socket is closed by the server (counted),
// none is left half-closed (FIN-WAIT-2 counted with ss), the process's descriptors come back down,
// and its log stays a few lines.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectionCapFor } from '../../src/registry/fd-limit';
import { CLI, startProcess } from '../support/cli';
import { PrivateKey } from '../../src/core/x25519';
import { call, signedBody, sleep } from './http';
import { metric } from './sockets';

const READY = /registry listening on (http:\/\/[^\s]+) \(store: memory/;
const ATTACKERS = Array.from({ length: 20 }, (_, i) => `127.0.0.${10 + i}`);
const PER_ATTACKER = 100;
const ATTACK_MS = 8000;
const ATTACKER = join(__dirname, 'slowloris-attacker.mjs');

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Server-side sockets of `port` in one TCP state whose peer is one of the attackers, as ss sees them. */
function attackSocketsInState(port: number, state: string): number {
  const r = spawnSync('ss', ['-Htan', 'state', state, `( sport = :${port} )`], { encoding: 'utf8' });
  if (r.status !== 0) return -1;
  const peers = r.stdout.split('\n').filter((l) => l.trim()).map((l) => l.trim().split(/\s+/).at(-1)!.replace(/:\d+$/, ''));
  return peers.filter((p) => ATTACKERS.includes(p)).length;
}

test('2,000-connection slowloris under ulimit -n 1024: a fresh client registers and looks up within 2 s; every abusive socket is closed', async (t) => {
  const haveSs = spawnSync('ss', ['-V']).status === 0;
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.P2PSHARE_REDIS_URL;
  const server = startProcess('sh', ['-c', `ulimit -n 1024; exec "${process.execPath}" "${CLI}" serve-registry --host 127.0.0.1 --port 0 --stun-port 0`], { env, label: 'serve-registry under ulimit -n 1024' });
  t.after(() => server.stop('SIGKILL'));
  const url = (await server.waitForLine(READY))[1]!;
  const port = Number(new URL(url).port);
  const pid = server.proc.pid!;
  assert.match(readFileSync(`/proc/${pid}/limits`, 'utf8'), /^Max open files\s+1024\s+1024/m, 'the registry runs under ulimit -n 1024');
  const before = (await call(url, 'GET', '/metrics')).text;
  assert.equal(metric(before, 'p2pshare_registry_connections_max{scope="all"}'), connectionCapFor(1024), 'the cap is sized from the fd limit');
  const baselineFds = openFds(pid);

  // The attack, from a process of its own: 2,000 connections, each sending a request line and
  // then a header line every 300 ms, reopened 500 ms after the server cuts it.
  const attacker = startProcess(process.execPath, [ATTACKER, String(port), ATTACKERS.join(','), String(PER_ATTACKER), String(ATTACK_MS)]);
  t.after(() => attacker.stop('SIGKILL'));

  // During it: three fresh clients, each registering (challenge + POST) and looking itself up.
  const legit: Array<{ challengeMs: number; registerMs: number; lookupMs: number }> = [];
  const samples: Array<{ fds: number; established: number; finWait2: number; closeWait: number }> = [];
  for (let round = 0; round < 3; round++) {
    await sleep(1500);
    const address = `127.0.0.${200 + round}`;
    const t0 = Date.now();
    const body = await signedBody(url, { name: `legit-${round}`, port: 4000 }, PrivateKey.generate(), { localAddress: address, timeoutMs: 10_000 });
    const challengeMs = Date.now() - t0;
    const r = await call(url, 'POST', '/v1/peers', body, {}, { localAddress: address, timeoutMs: 10_000 });
    const registerMs = Date.now() - t0;
    assert.equal(r.status, 201, r.text);
    const t1 = Date.now();
    const g = await call(url, 'GET', `/v1/peers/legit-${round}`, undefined, {}, { localAddress: address, timeoutMs: 10_000 });
    const lookupMs = Date.now() - t1;
    assert.equal(g.status, 200);
    assert.equal(g.json.ip, address);
    legit.push({ challengeMs, registerMs, lookupMs });
    samples.push({ fds: openFds(pid), established: haveSs ? attackSocketsInState(port, 'established') : -1, finWait2: haveSs ? attackSocketsInState(port, 'fin-wait-2') : -1, closeWait: haveSs ? attackSocketsInState(port, 'close-wait') : -1 });
  }
  const outcome = JSON.parse((await attacker.waitForLine(/^\{.*\}$/, ATTACK_MS + 20_000))[0]) as {
    opened: number; failed: number; closedByServer: number; byReset: number; byFin: number; longestLifeMs: number; uncut: number;
  };
  await sleep(500);
  const afterFds = openFds(pid);
  const m = (await call(url, 'GET', '/metrics')).text;
  const events = (reason: string) => metric(m, `p2pshare_registry_events_total{reason="${reason}"}`);

  console.log(`# slowloris: ${outcome.opened} attack connections opened in ${ATTACK_MS} ms, ${outcome.closedByServer} closed by the server ` +
    `(${outcome.byReset} by reset, ${outcome.byFin} by FIN), ${outcome.failed} failed otherwise, longest life ${outcome.longestLifeMs} ms, ${outcome.uncut} never closed`);
  console.log(`# legit during the attack: ${legit.map((l) => `register ${l.registerMs} ms (challenge ${l.challengeMs} ms), lookup ${l.lookupMs} ms`).join('; ')}`);
  console.log(`# server during the attack: ${samples.map((s) => `${s.fds} fds, ${s.established} attack sockets established, ${s.finWait2} FIN-WAIT-2, ${s.closeWait} CLOSE-WAIT`).join('; ')}; fds ${baselineFds} before, ${afterFds} after`);
  console.log(`# events: header_timeout ${events('header_timeout')}, connections_per_ip ${events('connections_per_ip')}, max_connections ${events('max_connections')}, connection_evicted ${events('connection_evicted')}`);

  for (const l of legit) {
    assert.ok(l.registerMs < 2000, `registration during the attack took ${l.registerMs} ms`);
    assert.ok(l.lookupMs < 2000, `lookup during the attack took ${l.lookupMs} ms`);
  }
  assert.ok(outcome.opened >= 2000, `the attack opened ${outcome.opened} connections`);
  assert.equal(outcome.uncut, 0, `${outcome.uncut} attack connections were never closed by the server`);
  assert.equal(outcome.closedByServer, outcome.opened, 'every attack connection was closed by the server');
  assert.equal(outcome.byFin, 0, 'by reset, never a half-close that waits for the client');
  if (haveSs) assert.ok(samples.some((s) => s.established > 0), 'ss does see the attack (so its zeros below mean something)');
  for (const s of samples) {
    assert.ok(s.fds < 1024, `the registry stayed under its fd limit (${s.fds})`);
    if (haveSs) assert.equal(s.finWait2, 0, 'no server socket of an attacker in FIN-WAIT-2');
    if (haveSs) assert.equal(s.closeWait, 0, 'nor in CLOSE-WAIT');
  }
  assert.ok(afterFds <= baselineFds + 5, `descriptors back to ${afterFds} (from ${baselineFds})`);
  assert.equal(metric(m, 'p2pshare_registry_connections_open'), 1, 'only the metrics request is open');
  assert.ok(events('header_timeout') > 0 && events('connections_per_ip') > 0);
  const logLines = server.stderr.split('\n').filter((l) => l.trim());
  assert.ok(logLines.length <= 10, `a few log lines, not one per connection:\n${server.stderr}`);
  assert.ok(!/^\s+at /m.test(server.stderr), 'no stack traces');
  assert.equal(await server.stop('SIGTERM'), 0, server.stderr);
});
