// A 2,000-connection slowloris against a real `serve-registry` process started under
// `ulimit -n 1024`, from 20 source addresses (127.0.0.10-29), each connection trickling header
// bytes and never finishing, reopened after the server cuts it. During the attack a fresh client
// registers and looks itself up within 2 s; every abusive socket is closed by the server (counted),
// none is left half-closed (FIN-WAIT-2 counted with ss), the process's descriptors come back down,
// and its log stays a few lines.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { connectionCapFor } from '../../src/registry/fd-limit';
import { CLI, startProcess } from '../support/cli';
import { call, register, sleep } from './http';
import { metric, rawClient, type RawClient } from './sockets';

const READY = /registry listening on (http:\/\/[^\s]+) \(store: memory/;
const ATTACKERS = Array.from({ length: 20 }, (_, i) => `127.0.0.${10 + i}`);
const PER_ATTACKER = 100;
const ATTACK_MS = 8000;

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Server-side sockets of `port` in one TCP state, as ss sees them. */
function socketsInState(port: number, state: string): number {
  const r = spawnSync('ss', ['-Htan', 'state', state, `( sport = :${port} )`], { encoding: 'utf8' });
  if (r.status !== 0) return -1;
  return r.stdout.split('\n').filter((l) => l.trim()).length;
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

  // The attack: 2,000 connections, each sending a request line and then a header line every 300 ms.
  const all: RawClient[] = [];
  const serverClosed: Array<{ lifeMs: number; how: string }> = [];
  let attacking = true;
  const open = (address: string) => {
    const c = rawClient(port, address);
    all.push(c);
    c.connected.then(() => c.socket.write('POST /v1/peers HTTP/1.1\r\nHost: registry\r\n'), () => {});
    void c.closed.then((r) => {
      if (r.how === 'local') return;
      serverClosed.push({ lifeMs: r.at - c.openedAt, how: r.how });
      c.destroyLocally();
      if (attacking) setTimeout(() => attacking && open(address), 500); // a slowloris comes back
    });
  };
  const ticker = setInterval(() => {
    for (const c of all) if (!c.socket.destroyed && c.socket.writable && !c.socket.connecting) c.socket.write('X-Pad: y\r\n');
  }, 300);
  t.after(() => clearInterval(ticker));
  const attackStart = Date.now();
  for (const a of ATTACKERS) for (let i = 0; i < PER_ATTACKER; i++) open(a);

  // During it: three fresh clients, each registering (challenge + POST) and looking itself up.
  const legit: Array<{ registerMs: number; lookupMs: number }> = [];
  const samples: Array<{ fds: number; finWait2: number; closeWait: number }> = [];
  for (let round = 0; round < 3; round++) {
    await sleep(1500);
    const address = `127.0.0.${200 + round}`;
    const t0 = Date.now();
    const r = await register(url, { name: `legit-${round}`, port: 4000 }, undefined, { localAddress: address, timeoutMs: 10_000 });
    const registerMs = Date.now() - t0;
    assert.equal(r.status, 201, r.text);
    const t1 = Date.now();
    const g = await call(url, 'GET', `/v1/peers/legit-${round}`, undefined, {}, { localAddress: address, timeoutMs: 10_000 });
    const lookupMs = Date.now() - t1;
    assert.equal(g.status, 200);
    assert.equal(g.json.ip, address);
    legit.push({ registerMs, lookupMs });
    samples.push({ fds: openFds(pid), finWait2: haveSs ? socketsInState(port, 'fin-wait-2') : -1, closeWait: haveSs ? socketsInState(port, 'close-wait') : -1 });
  }
  await sleep(Math.max(0, attackStart + ATTACK_MS - Date.now()));
  attacking = false;
  clearInterval(ticker);
  const opened = all.length;
  // The last ones are left as they are: the server must cut them by itself.
  const stillOpen = all.filter((c) => !c.socket.destroyed);
  await Promise.all(stillOpen.map((c) => Promise.race([c.closed, sleep(5000)])));
  const uncut = all.filter((c) => !c.socket.destroyed);
  for (const c of all) c.destroyLocally();
  await sleep(500);
  const afterFds = openFds(pid);
  const m = (await call(url, 'GET', '/metrics')).text;
  const events = (reason: string) => metric(m, `p2pshare_registry_events_total{reason="${reason}"}`);

  console.log(`# slowloris: ${opened} attack connections opened in ${ATTACK_MS} ms, ${serverClosed.length} closed by the server ` +
    `(${serverClosed.filter((x) => x.how === 'reset').length} by reset), longest life ${Math.max(...serverClosed.map((x) => x.lifeMs))} ms`);
  console.log(`# legit during the attack: ${legit.map((l) => `register ${l.registerMs} ms, lookup ${l.lookupMs} ms`).join('; ')}`);
  console.log(`# server during the attack: ${samples.map((s) => `${s.fds} fds, ${s.finWait2} FIN-WAIT-2, ${s.closeWait} CLOSE-WAIT`).join('; ')}; fds ${baselineFds} before, ${afterFds} after`);
  console.log(`# events: header_timeout ${events('header_timeout')}, connections_per_ip ${events('connections_per_ip')}, max_connections ${events('max_connections')}, connection_evicted ${events('connection_evicted')}`);

  for (const l of legit) {
    assert.ok(l.registerMs < 2000, `registration during the attack took ${l.registerMs} ms`);
    assert.ok(l.lookupMs < 2000, `lookup during the attack took ${l.lookupMs} ms`);
  }
  assert.ok(opened >= 2000, `the attack opened ${opened} connections`);
  assert.equal(uncut.length, 0, `${uncut.length} attack connections were never closed by the server`);
  assert.equal(serverClosed.length, opened, 'every attack connection was closed by the server');
  assert.ok(serverClosed.every((x) => x.how === 'reset'), 'by reset, never a half-close that waits for the client');
  for (const s of samples) {
    assert.ok(s.fds < 1024, `the registry stayed under its fd limit (${s.fds})`);
    if (haveSs) assert.equal(s.finWait2, 0, 'no server socket in FIN-WAIT-2');
    if (haveSs) assert.ok(s.closeWait <= 5, `no CLOSE-WAIT hoarding (${s.closeWait})`);
  }
  assert.ok(afterFds <= baselineFds + 5, `descriptors back to ${afterFds} (from ${baselineFds})`);
  assert.equal(metric(m, 'p2pshare_registry_connections_open'), 1, 'only the metrics request is open');
  assert.ok(events('header_timeout') > 0 && events('connections_per_ip') > 0);
  const logLines = server.stderr.split('\n').filter((l) => l.trim());
  assert.ok(logLines.length <= 10, `a few log lines, not one per connection:\n${server.stderr}`);
  assert.ok(!/^\s+at /m.test(server.stderr), 'no stack traces');
  assert.equal(await server.stop('SIGTERM'), 0, server.stderr);
});
