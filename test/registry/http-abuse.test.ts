// The registry's HTTP server against slow, silent, half-open, greedy and aborting clients, with
// real sockets from 127.0.0.x addresses (each address a client). Each attack is really performed,
// and a legitimate request succeeds during it. Deadlines are checked against generous bounds (the
// old server took 40 s), never against speed.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startRegistry, type RegistryOptions, type RunningRegistry } from '../../src/registry/index';
import { call, register, sleep } from './http';
import { metric, rawClient, trickle } from './sockets';

const running: RunningRegistry[] = [];
after(async () => {
  await Promise.all(running.map((r) => r.close()));
});

/** A memory registry whose log lines are kept in `lines`. */
async function start(extra: Partial<RegistryOptions> = {}): Promise<{ reg: RunningRegistry; lines: string[] }> {
  const lines: string[] = [];
  const reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null, log: (l) => lines.push(l), ...extra });
  running.push(reg);
  return { reg, lines };
}

async function openConnections(reg: RunningRegistry): Promise<number> {
  return metric((await call(reg.url, 'GET', '/metrics')).text, 'p2pshare_registry_connections_open');
}

describe('HTTP deadlines', () => {
  test('silent, header-trickling and body-trickling clients are cut after about a second, by reset, and counted once each', async () => {
    const { reg, lines } = await start();
    const silent = rawClient(reg.port, '127.0.0.40');
    const headers = rawClient(reg.port, '127.0.0.41');
    const body = rawClient(reg.port, '127.0.0.42');
    await Promise.all([silent.connected, headers.connected, body.connected]);
    headers.socket.write('GET /v1/peers HTTP/1.1\r\nHost: x\r\n');
    trickle(headers.socket, 'X-Pad: y\r\n', 100);
    body.socket.write('POST /v1/peers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
    trickle(body.socket, ' ', 100);
    // Meanwhile a legitimate client gets its answers.
    assert.equal((await register(reg.url, { name: 'patient', port: 1 }, undefined, { localAddress: '127.0.0.43' })).status, 201);
    const [s, h, b] = await Promise.all([silent.closed, headers.closed, body.closed]);
    for (const [label, c, r] of [['silent', silent, s], ['trickling headers', headers, h], ['trickling a body', body, b]] as const) {
      const ms = r.at - c.openedAt;
      console.log(`# ${label}: closed by the server after ${ms} ms (${r.how})`);
      assert.equal(r.how, 'reset', `${label}: reset, not half-closed`);
      assert.ok(ms >= 900, `${label}: not before its deadline (${ms} ms)`);
      assert.ok(ms < 5000, `${label}: cut within a few seconds, not Node's 30 s check (${ms} ms)`);
    }
    const m = (await call(reg.url, 'GET', '/metrics')).text;
    assert.equal(metric(m, 'p2pshare_registry_events_total{reason="header_timeout"}'), 2);
    assert.equal(metric(m, 'p2pshare_registry_events_total{reason="body_timeout"}'), 1);
    assert.equal(metric(m, 'p2pshare_registry_events_total{reason="aborted"}'), 0, 'a cut body is not counted twice');
    assert.equal(lines.filter((l) => l.includes('header_timeout')).length, 1, `one line for both header timeouts: ${lines.join(' | ')}`);
    assert.equal(lines.filter((l) => l.includes('body_timeout')).length, 1);
  });

  test('an idle keep-alive connection is closed, and a half-open client does not keep its descriptor', async () => {
    const { reg } = await start({ timeouts: { keepAliveTimeoutMs: 300 } });
    const clients = Array.from({ length: 20 }, (_, i) => rawClient(reg.port, `127.0.0.${50 + i}`));
    await Promise.all(clients.map((c) => c.connected));
    for (const c of clients) c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'); // keep-alive by default; never closed by us
    const closed = await Promise.all(clients.map((c) => c.closed));
    for (const r of closed) {
      assert.match(r.data, /^HTTP\/1\.1 200 /, 'answered first');
      assert.ok(r.how === 'end' || r.how === 'reset');
    }
    // Our sockets never ended their side: with a half-close the server would still hold 20.
    assert.equal(await openConnections(reg), 1, 'only the connection asking');
    for (const c of clients) c.destroyLocally();
  });

  test('garbage gets 400 and the connection closed by the server, even when the client keeps its side open', async () => {
    const { reg, lines } = await start();
    const clients = Array.from({ length: 30 }, (_, i) => rawClient(reg.port, `127.0.0.${80 + (i % 3)}`));
    await Promise.all(clients.map((c) => c.connected));
    for (const c of clients) c.socket.write('NOT HTTP AT ALL\r\n\r\n');
    const closed = await Promise.all(clients.map((c) => c.closed));
    for (const r of closed) assert.match(r.data, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.equal(await openConnections(reg), 1);
    assert.equal(lines.filter((l) => l.includes('bad_request')).length, 1, lines.join(' | '));
    for (const c of clients) c.destroyLocally();
  });
});

describe('connection caps', () => {
  test('per client: the 65th connection of one address is reset at once; other addresses are served', async () => {
    const { reg } = await start({ timeouts: { headersTimeoutMs: 20_000, requestTimeoutMs: 20_000 } });
    const held = Array.from({ length: 64 }, () => rawClient(reg.port, '127.0.0.90'));
    await Promise.all(held.map((c) => c.connected));
    await sleep(100);
    const extra = rawClient(reg.port, '127.0.0.90');
    const r = await extra.closed;
    assert.equal(r.how, 'reset');
    assert.ok(r.at - extra.openedAt < 1000, 'refused at once');
    assert.equal((await call(reg.url, 'GET', '/healthz', undefined, {}, { localAddress: '127.0.0.91' })).status, 200);
    const m = (await call(reg.url, 'GET', '/metrics')).text;
    assert.equal(metric(m, 'p2pshare_registry_events_total{reason="connections_per_ip"}'), 1);
    assert.equal(metric(m, 'p2pshare_registry_connections_open'), 65, 'the 64 held and the one asking');
    assert.equal(metric(m, 'p2pshare_registry_connections_max{scope="per_ip"}'), 64);
    for (const c of held) c.destroyLocally();
  });

  test('in all: at the cap a newcomer takes the place of the oldest idle connection of the greediest client', async () => {
    const { reg } = await start({ limits: { maxConnections: 30 }, timeouts: { headersTimeoutMs: 20_000, requestTimeoutMs: 20_000 } });
    const greedy = Array.from({ length: 20 }, () => rawClient(reg.port, '127.0.0.100'));
    for (const c of greedy) await c.connected; // in order: the first is the oldest
    const modest = Array.from({ length: 10 }, () => rawClient(reg.port, '127.0.0.101'));
    await Promise.all(modest.map((c) => c.connected));
    await sleep(100);
    // At the cap: 6 connections held by a newcomer, then a registration from another one.
    const newcomer = Array.from({ length: 6 }, () => rawClient(reg.port, '127.0.0.102'));
    await Promise.all(newcomer.map((c) => c.connected));
    await sleep(100);
    const r = await register(reg.url, { name: 'at-the-cap', port: 1 }, undefined, { localAddress: '127.0.0.103' });
    assert.equal(r.status, 201, 'served at the cap');
    await sleep(100);
    const greedyClosed = greedy.filter((c) => c.socket.destroyed).length;
    assert.equal(modest.filter((c) => c.socket.destroyed).length, 0, 'the modest client keeps its connections');
    assert.equal(newcomer.filter((c) => c.socket.destroyed).length, 0, 'the newcomer keeps the places it took');
    assert.ok(greedyClosed >= 7 && greedyClosed <= 9, `6 held places and the registration's requests were the greedy client's (${greedyClosed})`);
    assert.ok(greedy.slice(0, greedyClosed).every((c) => c.socket.destroyed), 'the oldest first');
    const m = (await call(reg.url, 'GET', '/metrics')).text;
    assert.equal(metric(m, 'p2pshare_registry_events_total{reason="connection_evicted"}'), greedyClosed);
    assert.equal(metric(m, 'p2pshare_registry_connections_open'), 20 - greedyClosed + 10 + 6 + 1, 'the ones held, and this request');
    assert.equal(metric(m, 'p2pshare_registry_connections_max{scope="all"}'), 30);
    for (const c of [...greedy, ...modest, ...newcomer]) c.destroyLocally();
  });
});

describe('aborted requests', () => {
  test('3000 clients aborting mid-body: counted, logged as a few lines without stacks; the registry serves on', async () => {
    const { reg, lines } = await start();
    let next = 0;
    const N = 3000;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const c = rawClient(reg.port, `127.0.1.${1 + (i % 100)}`);
        await c.connected;
        c.socket.write('POST /v1/peers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"name":"ab');
        await sleep(5);
        c.destroyLocally();
        await c.closed;
      }
    };
    await Promise.all(Array.from({ length: 50 }, worker));
    await sleep(200);
    assert.equal((await register(reg.url, { name: 'after-aborts', port: 1 }, undefined, { localAddress: '127.0.0.110' })).status, 201);
    const m = (await call(reg.url, 'GET', '/metrics')).text;
    const aborted = metric(m, 'p2pshare_registry_events_total{reason="aborted"}');
    console.log(`# ${N} aborting clients: ${aborted} counted; ${lines.length} log lines`);
    assert.equal(aborted, N, 'every abort counted');
    assert.ok(lines.length <= 4, `a few lines, not one per client: ${lines.join(' | ')}`);
    assert.ok(lines.every((l) => !l.includes('\n') && !/^\s+at /.test(l)), 'no stack traces');
    assert.equal(metric(m, 'p2pshare_registry_events_total{reason="internal_error"}'), 0);
  });
});
