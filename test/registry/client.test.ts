// The peers' registry client against real HTTP servers: ports that fetch() refuses, and a
// registry (or impostor) that answers without end.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { P2pError } from '../../src/core/errors';
import { RegistryClient } from '../../src/registry/client';
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
    const mine = await client.register({ name: 'sixsix', port: 4000 });
    assert.equal(mine.name, 'sixsix');
    assert.deepEqual((await client.list()).map((p) => p.name), ['sixsix']);
    assert.equal((await client.lookup('SIXSIX')).port, 4000);
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
