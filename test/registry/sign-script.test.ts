// scripts/sign-registration.mjs, which README.md's curl examples register with: its bodies are
// accepted, its key file makes the same key next time (a reclaim), a changed field is refused.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { startRegistry } from '../../src/registry/index';
import { tempDir } from '../support/cli';
import { call } from './http';

const SCRIPT = resolve(__dirname, '../../scripts/sign-registration.mjs');

async function sign(registry: string, keyFile: string, body: object): Promise<any> {
  const { stdout } = await promisify(execFile)(process.execPath, [SCRIPT, registry, keyFile, JSON.stringify(body)], { timeout: 20_000 });
  return JSON.parse(stdout);
}

test('sign-registration.mjs: accepted, the same key file reclaims, a field changed after signing is refused', async () => {
  const { dir, cleanup } = await tempDir();
  const reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null });
  try {
    const keyFile = join(dir, 'alice.key');
    const first = await call(reg.url, 'POST', '/v1/peers', await sign(reg.url, keyFile, { name: 'Alice', port: 4000, addresses: ['192.168.1.20'] }));
    assert.equal(first.status, 201, first.text);
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const again = await sign(reg.url, keyFile, { name: 'alice', port: 4001, ip: '10.0.0.1' });
    const reclaimed = await call(reg.url, 'POST', '/v1/peers', again);
    assert.equal(reclaimed.status, 201, reclaimed.text);
    assert.notEqual(reclaimed.json.token, first.json.token);
    const g = await call(reg.url, 'GET', '/v1/peers/alice');
    assert.equal(g.json.port, 4001);
    assert.equal(g.json.publicKey, again.publicKey);
    const other = await call(reg.url, 'POST', '/v1/peers', await sign(reg.url, join(dir, 'mallory.key'), { name: 'ALICE', port: 5000 }));
    assert.equal(other.status, 409);
    const changed = await call(reg.url, 'POST', '/v1/peers', { ...(await sign(reg.url, keyFile, { name: 'carl', port: 4000 })), port: 4001 });
    assert.equal(changed.status, 403);
    assert.equal(changed.json.error.code, 'invalid_proof');
  } finally {
    await reg.close();
    await cleanup();
  }
});
