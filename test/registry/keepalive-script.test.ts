// scripts/rendezvous-keepalive.mjs, README.md's keepalive example and a reference for clients in
// other languages: its KEEPALIVE is accepted and recorded; a wrong token or a replayed sequence
// gets no ACK (exit 1).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { startRegistry } from '../../src/registry/index';
import { call } from './http';
import { registerPeer } from './udp-peer';

const SCRIPT = resolve(__dirname, '../../scripts/rendezvous-keepalive.mjs');

async function run(args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [SCRIPT, ...args], { timeout: 20_000 });
    return { code: 0, stdout };
  } catch (err) {
    return { code: (err as { code: number }).code, stdout: (err as { stdout: string }).stdout };
  }
}

test('rendezvous-keepalive.mjs: acknowledged and recorded; a wrong token or a replayed sequence is not', async () => {
  const reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: 0 });
  try {
    const token = await registerPeer(reg, 'scripted');
    const target = `127.0.0.1:${reg.stunPort}`;
    const ok = await run([target, 'scripted', token, '7']);
    assert.equal(ok.code, 0);
    const m = /acknowledged sequence 7; the registry sees this socket as 127\.0\.0\.1:(\d+)/.exec(ok.stdout);
    assert.ok(m, ok.stdout);
    assert.deepEqual((await call(reg.url, 'GET', '/v1/peers/scripted')).json.udp, { ip: '127.0.0.1', port: Number(m[1]) });
    assert.equal((await run([target, 'scripted', token, '7'])).code, 1, 'the same sequence again');
    assert.equal((await run([target, 'scripted', 'wrong-token', '8'])).code, 1);
    assert.equal((await run([target, 'scripted', token])).code, 0, 'the time in ms is above 7');
  } finally {
    await reg.close();
  }
});
