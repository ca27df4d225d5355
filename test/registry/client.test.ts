// The peers' registry client against real HTTP servers: ports that fetch() refuses, and a
// registry (or impostor) that answers without end.
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { P2pError } from '../../src/core/errors';
import { PrivateKey } from '../../src/core/x25519';
import { RegistryClient, RegistryHttpError } from '../../src/registry/client';
import { startRegistry, type RunningRegistry } from '../../src/registry/index';

test('a registry on a port that fetch() refuses (6665-6669, 10080, ...) is reachable', async () => {
  let reg: RunningRegistry | undefined;
  for (const port of [6665, 6666, 6667, 6668, 6669, 6697, 10080]) {
    reg = await startRegistry({ host: '127.0.0.1', port, stunPort: null }).catch(() => undefined);
    if (reg) break;
  }
  assert.ok(reg, 'no port of the list was free');
  try {
    const client = new RegistryClient(reg.url);
    const key = PrivateKey.generate();
    const mine = await client.register({ name: 'sixsix', port: 4000 }, key);
    assert.equal(mine.name, 'sixsix');
    assert.deepEqual((await client.list()).map((p) => [p.name, p.publicKey]), [['sixsix', key.publicKey.toString('base64url')]]);
    const found = await client.lookup('SIXSIX');
    assert.equal(found.port, 4000);
    assert.equal(found.publicKey, key.publicKey.toString('base64url'));
    assert.equal(await client.heartbeat('sixsix', mine.token), true);
    await client.unregister('sixsix', mine.token);
    assert.equal(await client.heartbeat('sixsix', mine.token), false);
  } finally {
    await reg.close();
  }
});

test('an answer that never ends is cut off: one line, exit 5, memory not filled', async () => {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (res.write(chunk));
      res.once('drain', pump);
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const rssBefore = process.memoryUsage().rss;
    await assert.rejects(new RegistryClient(url).list(), (err: unknown) => {
      assert.ok(err instanceof P2pError);
      assert.equal(err.code, 'REGISTRY_UNAVAILABLE'); // exit 5
      assert.doesNotMatch(err.message, /\n/);
      assert.match(err.message, /too large/);
      return true;
    });
    const grown = process.memoryUsage().rss - rssBefore;
    assert.ok(grown < 200 * 1024 * 1024, `memory grew by ${Math.round(grown / 1024 / 1024)} MiB`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

async function listening(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closing(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

test('register: the same key reclaims its name at once (the old token then gets 403), another key gets 409', async () => {
  const reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null });
  try {
    const client = new RegistryClient(reg.url);
    const key = PrivateKey.generate();
    const first = await client.register({ name: 'olive', port: 4000 }, key);
    const second = await client.register({ name: 'olive', port: 4001 }, key);
    assert.notEqual(second.token, first.token);
    assert.equal((await client.lookup('olive')).port, 4001);
    await assert.rejects(client.heartbeat('olive', first.token), (err: unknown) => err instanceof RegistryHttpError && err.status === 403);
    assert.equal(await client.heartbeat('olive', second.token), true);
    await assert.rejects(client.register({ name: 'OLIVE', port: 4002 }, PrivateKey.generate()), (err: unknown) => {
      assert.ok(err instanceof RegistryHttpError);
      assert.equal(err.status, 409);
      assert.equal(err.registryCode, 'name_taken');
      return true;
    });
  } finally {
    await reg.close();
  }
});

test('register: a challenge refused as expired is fetched again once, and the second one serves', async () => {
  const home = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null });
  const stranger = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null }); // another secret
  // In front of them: the first challenge comes from the stranger (so the registration's proof is
  // refused with 401 challenge_expired), every other request goes to home.
  const seen: string[] = [];
  const front = createServer((req, res) => {
    const first = req.url === '/v1/challenge' && !seen.includes('GET /v1/challenge');
    seen.push(`${req.method} ${req.url}`);
    const to = new URL(req.url!, first ? stranger.url : home.url);
    const fwd = request(to, { method: req.method, headers: req.headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    req.pipe(fwd);
  });
  const url = await listening(front);
  try {
    const key = PrivateKey.generate();
    const reg = await new RegistryClient(url).register({ name: 'retried', port: 4000 }, key);
    assert.equal(reg.name, 'retried');
    assert.deepEqual(seen, ['GET /v1/challenge', 'POST /v1/peers', 'GET /v1/challenge', 'POST /v1/peers']);
    assert.equal((await new RegistryClient(home.url).lookup('retried')).publicKey, key.publicKey.toString('base64url'));
  } finally {
    await closing(front);
    await home.close();
    await stranger.close();
  }
});

test('register: only one retry when challenges keep expiring, then the 401 is the answer', async () => {
  const reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null, challengeTtlMs: 0 });
  try {
    await assert.rejects(new RegistryClient(reg.url).register({ name: 'never', port: 4000 }, PrivateKey.generate()), (err: unknown) => {
      assert.ok(err instanceof RegistryHttpError);
      assert.equal(err.status, 401);
      assert.equal(err.registryCode, 'challenge_expired');
      return true;
    });
    const metrics = await (await fetch(`${reg.url}/metrics`)).text();
    assert.match(metrics, /method="GET",route="\/v1\/challenge",status="200"\} 2\n/);
    assert.match(metrics, /method="POST",route="\/v1\/peers",status="401"\} 2\n/);
  } finally {
    await reg.close();
  }
});

test('register: a malformed challenge answer is one clear error, nothing posted', async () => {
  const posted: string[] = [];
  const server = createServer((req, res) => {
    posted.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ challenge: 'short', registryKey: Buffer.alloc(32, 9).toString('base64url') }));
  });
  const url = await listening(server);
  try {
    await assert.rejects(new RegistryClient(url).register({ name: 'x', port: 1 }, PrivateKey.generate()), (err: unknown) => {
      assert.ok(err instanceof P2pError);
      assert.equal(err.code, 'REGISTRY_UNAVAILABLE');
      assert.match(err.message, /malformed challenge/);
      return true;
    });
    assert.deepEqual(posted, ['GET /v1/challenge']);
  } finally {
    await closing(server);
  }
});
