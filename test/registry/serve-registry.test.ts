// `p2pshare serve-registry` as a real process (dist/p2pshare.cjs, built by `npm test` first).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { connectionCapFor, readFileLimit } from '../../src/registry/fd-limit';
import { CLI, startCli, runCli, startProcess } from '../support/cli';
import { freePort } from '../support/redis';
import { call, register, sleep } from './http';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { Attr, decodeAddress, decodeStunMessage, encodeBindingRequest } from '../../src/wire/stun';

/** One Binding request to 127.0.0.1:port; resolves with the address the server saw, or rejects after 3 s. */
async function stunAsk(port: number): Promise<{ mapped: unknown; own: number }> {
  const socket = createSocket('udp4');
  try {
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    const tid = randomBytes(12);
    const reply = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no STUN answer on udp port ${port}`)), 3000);
      socket.on('message', (d) => {
        clearTimeout(timer);
        resolve(d);
      });
    });
    socket.send(encodeBindingRequest(tid, { fingerprint: true }), port, '127.0.0.1');
    const decoded = decodeStunMessage(await reply);
    assert.ok(decoded.ok);
    const xor = decoded.message.attributes.find((a) => a.type === Attr.XOR_MAPPED_ADDRESS)!;
    return { mapped: decodeAddress(xor.value, tid), own: socket.address().port };
  } finally {
    socket.close();
  }
}

const READY = /registry listening on (http:\/\/[^\s]+) \(store: (memory|redis), stun: (?:udp port (\d+)|off)\)/;

test('serve-registry --port 0 --stun-port 0 prints one ready line, serves, exits 0 within 5 s on SIGTERM', async () => {
  const cli = startCli(['serve-registry', '--host', '127.0.0.1', '--port', '0', '--stun-port', '0']);
  try {
    const m = await cli.waitForLine(READY);
    const url = m[1]!;
    assert.equal(m[2], 'memory');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(url, 'http://127.0.0.1:0');
    assert.ok(m[3] !== undefined && Number(m[3]) > 0, 'the STUN port it really got');
    const { mapped, own } = await stunAsk(Number(m[3]));
    assert.deepEqual(mapped, { family: 4, address: '127.0.0.1', port: own });
    assert.equal(cli.stdout.trim().split('\n').length, 1, 'exactly one line on stdout');
    const h = await call(url, 'GET', '/healthz');
    assert.deepEqual(h.json, { status: 'ok', store: 'memory' });
    assert.equal((await register(url, { name: 'cli-peer', port: 1 })).status, 201);
    const t0 = Date.now();
    const code = await cli.stop('SIGTERM');
    assert.equal(code, 0, cli.stderr);
    assert.ok(Date.now() - t0 < 5000, 'shut down within 5 s');
  } finally {
    await cli.stop('SIGKILL');
  }
});

test('serve-registry with an unreachable Redis starts anyway, healthz 503, exits 0 on SIGINT', async () => {
  const port = await freePort();
  const cli = startCli(['serve-registry', '--host', '127.0.0.1', '--port', '0', '--stun-port', '0', '--redis', `redis://127.0.0.1:${port}`]);
  try {
    const m = await cli.waitForLine(READY);
    assert.equal(m[2], 'redis');
    const h = await call(m[1]!, 'GET', '/healthz');
    assert.equal(h.status, 503);
    assert.equal(h.json.error.code, 'store_unavailable');
    const t0 = Date.now();
    assert.equal(await cli.stop('SIGINT'), 0, cli.stderr);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    await cli.stop('SIGKILL');
  }
});

test('serve-registry rejects bad options with exit 2', async () => {
  for (const args of [['--port', 'x'], ['--port', '70000'], ['--ttl', '0'], ['--redis', 'http://nope'], ['--stun-port', '70000'], ['--stun-port=-1'], ['extra']]) {
    const r = await runCli(['serve-registry', ...args], { timeoutMs: 10_000 });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
});

test('serve-registry limit flags: documented in --help, checked (exit 2), and enforced by the real process', async () => {
  const help = await runCli(['serve-registry', '--help'], { timeoutMs: 10_000 });
  assert.equal(help.code, 0);
  for (const flag of ['--max-peers', '--max-names-per-ip', '--registrations-per-minute', '--challenges-per-minute', '--max-connections', '--max-connections-per-ip']) {
    assert.match(help.stdout, new RegExp(`${flag} N .*\\(default`), flag);
  }
  for (const args of [['--max-peers', '0'], ['--max-names-per-ip', 'x'], ['--registrations-per-minute', '-1'], ['--max-connections', '3'], ['--max-connections-per-ip', '0']]) {
    const r = await runCli(['serve-registry', ...args], { timeoutMs: 10_000 });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  const cli = startCli(['serve-registry', '--host', '127.0.0.1', '--port', '0', '--stun-port', '0',
    '--max-names-per-ip', '1', '--registrations-per-minute', '2', '--max-peers', '2', '--max-connections-per-ip', '5', '--max-connections', '10000000']);
  try {
    const url = (await cli.waitForLine(READY))[1]!;
    const first = await register(url, { name: 'only-one', port: 1 }, undefined, { localAddress: '127.0.0.60' });
    assert.equal(first.status, 201);
    const second = await register(url, { name: 'second', port: 1 }, undefined, { localAddress: '127.0.0.60' });
    assert.equal(second.status, 429);
    assert.equal(second.json.error.code, 'too_many_names');
    const third = await register(url, { name: 'third', port: 1 }, undefined, { localAddress: '127.0.0.60' });
    assert.equal(third.json.error.code, 'rate_limited', 'the third POST within the minute');
    assert.equal((await register(url, { name: 'second', port: 1 }, undefined, { localAddress: '127.0.0.61' })).status, 201);
    const full = await register(url, { name: 'third', port: 1 }, undefined, { localAddress: '127.0.0.62' });
    assert.equal(full.status, 503);
    assert.equal(full.json.error.code, 'registry_full');
    const m = (await call(url, 'GET', '/metrics')).text;
    assert.match(m, /p2pshare_registry_connections_max\{scope="per_ip"\} 5\n/);
    const all = Number(/p2pshare_registry_connections_max\{scope="all"\} (\d+)\n/.exec(m)?.[1]);
    assert.ok(all > 0 && all < 10_000_000, `--max-connections lowered to what the fd limit allows (${all})`);
    await sleep(100);
    assert.match(cli.stderr, /--max-connections lowered to \d+, what the open-file limit \(ulimit -n\) allows/);
    assert.equal(await cli.stop('SIGTERM'), 0);
  } finally {
    await cli.stop('SIGKILL');
  }
});

const havePrlimit = spawnSync('prlimit', ['--version']).status === 0;
test('serve-registry raises its soft open-file limit to the hard one at start, and sizes its connection cap from it', { skip: havePrlimit ? false : 'prlimit (util-linux) not installed' }, async () => {
  const hard = readFileLimit()!.hard;
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.P2PSHARE_REDIS_URL;
  const server = startProcess('sh', ['-c', `ulimit -Sn 512; exec "${process.execPath}" "${CLI}" serve-registry --host 127.0.0.1 --port 0 --stun-port 0`], { env });
  try {
    const url = (await server.waitForLine(READY))[1]!;
    const limit = readFileLimit(`/proc/${server.proc.pid}/limits`)!;
    assert.ok(hard > 512, `the hard limit here (${hard}) is above the soft one asked for`);
    assert.deepEqual(limit, { soft: Math.min(hard, 1 << 20), hard }, 'soft raised to hard');
    const m = (await call(url, 'GET', '/metrics')).text;
    assert.match(m, new RegExp(`p2pshare_registry_connections_max\\{scope="all"\\} ${connectionCapFor(limit.soft)}\\n`));
    assert.equal(await server.stop('SIGTERM'), 0);
  } finally {
    await server.stop('SIGKILL');
  }
});

test('serve-registry relay flags: documented, checked (exit 2), in force (/metrics); --no-relay turns it off', async () => {
  const help = await runCli(['serve-registry', '--help'], { timeoutMs: 10_000 });
  for (const flag of ['--relay-sessions N', '--relay-session-rate N', '--relay-session-mib N', '--relay-rate N', '--relay-idle SECONDS']) {
    assert.match(help.stdout, new RegExp(`${flag} .*\\(default`), flag);
  }
  assert.match(help.stdout, /--no-relay/);
  assert.match(help.stdout, /--advertise-udp HOST\[:PORT\]/);
  for (const args of [['--relay-sessions', '0'], ['--relay-rate', 'x'], ['--relay-idle', '0'], ['--advertise-udp', 'example.com'], ['--advertise-udp', '1.2.3.4:0'], ['--no-relay=yes']]) {
    const r = await runCli(['serve-registry', ...args], { timeoutMs: 10_000 });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  const base = ['serve-registry', '--host', '127.0.0.1', '--port', '0', '--stun-port', '0'];
  const on = startCli([...base, '--relay-sessions', '3', '--relay-session-rate', '2', '--relay-session-mib', '5', '--relay-rate', '7', '--relay-idle', '9']);
  const off = startCli([...base, '--no-relay', '--advertise-udp', '[::1]:4444']);
  try {
    const m = (await call((await on.waitForLine(READY))[1]!, 'GET', '/metrics')).text;
    assert.match(m, /p2pshare_registry_relay_enabled 1\n/);
    assert.match(m, /p2pshare_registry_relay_limit\{cap="sessions"\} 3\n/);
    assert.match(m, /p2pshare_registry_relay_limit\{cap="session_bytes_per_second"\} 2097152\n/);
    assert.match(m, /p2pshare_registry_relay_limit\{cap="session_bytes"\} 5242880\n/);
    assert.match(m, /p2pshare_registry_relay_limit\{cap="total_bytes_per_second"\} 7340032\n/);
    assert.match(m, /p2pshare_registry_relay_limit\{cap="idle_seconds"\} 9\n/);
    const offUrl = (await off.waitForLine(READY))[1]!;
    const mo = (await call(offUrl, 'GET', '/metrics')).text;
    assert.match(mo, /p2pshare_registry_relay_enabled 0\n/);
    assert.doesNotMatch(mo, /relay_limit/);
    assert.deepEqual((await call(offUrl, 'GET', '/v1/challenge')).json.rendezvous, { port: 4444 });
    assert.equal(await on.stop('SIGTERM'), 0);
    assert.equal(await off.stop('SIGTERM'), 0);
  } finally {
    await on.stop('SIGKILL');
    await off.stop('SIGKILL');
  }
});
