// The STUN server over real UDP, started by startRegistry like serve-registry does.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startRegistry, type RunningRegistry } from '../../src/registry/index';
import { Attr, StunClass, decodeAddress, decodeStunMessage, encodeBindingRequest, type StunMessage } from '../../src/wire/stun';
import { MAX_STUN_DATAGRAM_BYTES } from '../../src/registry/stun-server';
import { call, register, sleep } from './http';
import { seededRandom } from '../support/random';
import { UdpPeer } from './udp-peer';
import { legacyRequest, mutateDatagram, withAttribute } from '../support/stun';

/** The first datagram `client` received whose STUN transaction id is `tid`, or null after `timeoutMs`. */
async function reply(client: UdpPeer, tid: Buffer, timeoutMs = 3000): Promise<Buffer | null> {
  const r = await client.waitFor((d) => d.data.length >= 20 && d.data.subarray(8, 20).equals(tid), timeoutMs);
  return r?.data ?? null;
}

function decodeOk(bytes: Buffer): StunMessage {
  const r = decodeStunMessage(bytes);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.message;
}

/** Sends one Binding request, asserts the answer tells `client` its own address and port. */
async function assertBinding(client: UdpPeer, stunPort: number, host: string, expectAddress: string, family: 4 | 6): Promise<void> {
  const tid = randomBytes(12);
  await client.send(encodeBindingRequest(tid, { fingerprint: true }), stunPort, host);
  const answer = await reply(client, tid);
  assert.ok(answer, `no Binding response from ${host}:${stunPort}`);
  const m = decodeOk(answer);
  assert.equal(m.cls, StunClass.success);
  assert.equal(m.fingerprint, 'valid');
  assert.deepEqual(m.transactionId, tid);
  const mine = { family, address: expectAddress, port: client.port };
  const xor = m.attributes.find((a) => a.type === Attr.XOR_MAPPED_ADDRESS)!;
  const plain = m.attributes.find((a) => a.type === Attr.MAPPED_ADDRESS)!;
  assert.deepEqual(decodeAddress(xor.value, tid), mine);
  assert.deepEqual(decodeAddress(plain.value), mine);
  assert.match(m.attributes.find((a) => a.type === Attr.SOFTWARE)!.value.toString(), /p2pshare/);
}

async function stunCounters(url: string): Promise<Record<string, number>> {
  const r = await call(url, 'GET', '/metrics');
  assert.equal(r.status, 200);
  const out: Record<string, number> = {};
  for (const m of r.text.matchAll(/^p2pshare_registry_stun_datagrams_total\{outcome="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

let reg: RunningRegistry;
let client: UdpPeer;
before(async () => {
  reg = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: 0 });
  client = await UdpPeer.open('127.0.0.1');
});
after(async () => {
  await client.close();
  await reg.close();
});

test('a Binding request on 127.0.0.1 learns the client socket its own address and port', async () => {
  assert.ok(reg.stunPort! > 0);
  await assertBinding(client, reg.stunPort!, '127.0.0.1', '127.0.0.1', 4);
  // Also without FINGERPRINT, and from an RFC 3489 client (MAPPED-ADDRESS, 16-byte id echoed).
  const tid = randomBytes(12);
  await client.send(encodeBindingRequest(tid), reg.stunPort!, '127.0.0.1');
  assert.ok(await reply(client, tid));
  const legacyId = Buffer.concat([Buffer.from([9, 9, 9, 9]), randomBytes(12)]);
  await client.send(legacyRequest(legacyId), reg.stunPort!, '127.0.0.1');
  const legacy = decodeOk((await reply(client, legacyId.subarray(4)))!);
  assert.equal(legacy.legacy, true);
  assert.deepEqual(legacy.transactionId, legacyId);
  assert.deepEqual(decodeAddress(legacy.attributes.find((a) => a.type === Attr.MAPPED_ADDRESS)!.value), {
    family: 4,
    address: '127.0.0.1',
    port: client.port,
  });
  assert.ok((await stunCounters(reg.url)).answered! >= 3);
});

test('an unknown comprehension-required attribute gets a 420 error listing it', async () => {
  const tid = randomBytes(12);
  await client.send(withAttribute(encodeBindingRequest(tid), 0x7777, Buffer.from('?')), reg.stunPort!, '127.0.0.1');
  const m = decodeOk((await reply(client, tid))!);
  assert.equal(m.cls, StunClass.error);
  const code = m.attributes.find((a) => a.type === Attr.ERROR_CODE)!.value;
  assert.equal((code[2]! & 7) * 100 + code[3]!, 420);
  assert.deepEqual(m.attributes.find((a) => a.type === Attr.UNKNOWN_ATTRIBUTES)!.value, Buffer.from([0x77, 0x77]));
});

test('garbage, non-requests, bad lengths, bad fingerprints and oversize datagrams get no reply', async () => {
  const before = await stunCounters(reg.url);
  const tids: Buffer[] = [];
  const request = (fingerprint = true) => {
    const tid = randomBytes(12);
    tids.push(tid);
    return Buffer.from(encodeBindingRequest(tid, { fingerprint }));
  };
  const garbage: Buffer[] = [];
  garbage.push(Buffer.concat([Buffer.from([0, 1, 0, 0]), Buffer.from('not stun at all')])); // short and wrong
  garbage.push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')); // another protocol
  { const b = request(false); b.writeUInt16BE(0x0101, 0); garbage.push(b); } // a success response
  { const b = request(false); b.writeUInt16BE(0x0011, 0); garbage.push(b); } // an indication
  { const b = request(false); b.writeUInt16BE(0x0003, 0); garbage.push(b); } // Allocate, not Binding
  { const b = request(); b.writeUInt16BE(12, 2); garbage.push(b); } // length says more than sent
  { const b = request(); b.writeUInt16BE(6, 2); garbage.push(b); } // length not a multiple of 4
  { const b = request(); b[b.length - 1]! ^= 1; garbage.push(b); } // FINGERPRINT wrong
  { const b = request(); b.writeUInt32BE(0x2112a443, 4); garbage.push(b); } // wrong cookie (with FINGERPRINT)
  garbage.push(withAttribute(request(false), 0x8022, Buffer.alloc(MAX_STUN_DATAGRAM_BYTES))); // oversize
  for (const d of garbage) await client.send(d, reg.stunPort!, '127.0.0.1');
  await sleep(300);
  const receivedBefore = client.received.length;
  for (const tid of tids) assert.equal(await reply(client, tid, 0), null, 'a reply to garbage');
  // The server did see them all (the silence is a decision, not a lost datagram)...
  const now = await stunCounters(reg.url);
  const drops = (c: Record<string, number>) =>
    c.dropped_malformed! + c.dropped_fingerprint! + c.dropped_not_binding_request! + c.dropped_oversize!;
  assert.equal(drops(now) - drops(before), garbage.length);
  assert.equal(now.dropped_oversize! - before.dropped_oversize!, 1);
  assert.equal(now.dropped_fingerprint! - before.dropped_fingerprint!, 1);
  assert.equal(now.dropped_not_binding_request! - before.dropped_not_binding_request!, 3);
  assert.equal(now.answered, before.answered);
  // ...and is alive.
  await assertBinding(client, reg.stunPort!, '127.0.0.1', '127.0.0.1', 4);
  assert.equal(client.received.length, receivedBefore + 1);
});

test('fuzz: 24 000 random and mutated datagrams at the real port, then STUN and HTTP still answer', async (t) => {
  const rand = seededRandom(0xf00d);
  const fuzzer = await UdpPeer.open('127.0.0.1');
  try {
    const seeds = [encodeBindingRequest(randomBytes(12), { fingerprint: true, software: 'fuzz' }), encodeBindingRequest(randomBytes(12)), legacyRequest()];
    const before = await stunCounters(reg.url);
    const total = 24_000;
    let barriers = 0;
    for (let i = 0; i < total; i += 100) {
      const batch: Promise<void>[] = [];
      for (let j = i; j < i + 100; j++) {
        const d = j % 4 === 0 ? randomBytes(Math.floor(rand() * 200)) : mutateDatagram(rand, seeds[j % seeds.length]!);
        batch.push(fuzzer.send(d, reg.stunPort!, '127.0.0.1'));
      }
      await Promise.all(batch);
      // A valid request after each batch: once it is answered the server has worked through the
      // batch (loopback keeps order), so the socket buffers are never simply overrun.
      for (let attempt = 0; ; attempt++) {
        const tid = randomBytes(12);
        await fuzzer.send(encodeBindingRequest(tid), reg.stunPort!, '127.0.0.1');
        if (await reply(fuzzer, tid, 1000)) break;
        assert.ok(attempt < 3, `no answer after batch ${i / 100}`);
      }
      barriers++;
      fuzzer.received.length = 0;
    }
    const now = await stunCounters(reg.url);
    const seen = Object.keys(now).reduce((n, k) => n + now[k]! - before[k]!, 0) - barriers;
    t.diagnostic(`outcomes: ${Object.keys(now).map((k) => `${k}=${now[k]! - before[k]!}`).join(' ')} (incl. ${barriers} barrier requests)`);
    // Proof the fuzz reached the server (loopback may still drop a few under load).
    assert.ok(seen >= total * 0.9, `the server saw only ${seen} of ${total} datagrams`);
    assert.ok(now.dropped_malformed! - before.dropped_malformed! > total / 2);
    await assertBinding(client, reg.stunPort!, '127.0.0.1', '127.0.0.1', 4);
    const h = await call(reg.url, 'GET', '/healthz');
    assert.deepEqual(h.json, { status: 'ok', store: 'memory' });
    assert.equal((await register(reg.url, { name: 'after-fuzz', port: 9 })).status, 201);
  } finally {
    await fuzzer.close();
  }
});

test('IPv6: on ::1 the answer carries the IPv6 address; a wildcard host serves IPv4 and IPv6 on one port', async (t) => {
  const probe = await UdpPeer.open('::1').catch(() => null);
  if (!probe) {
    t.skip('IPv6 loopback (::1) is not available on this machine: IPv6 STUN NOT TESTED');
    return;
  }
  await probe.close();
  const v6 = await startRegistry({ host: '::1', port: 0, stunPort: 0 });
  const wild = await startRegistry({ host: '0.0.0.0', port: 0, stunPort: 0 });
  const c6 = await UdpPeer.open('::1');
  try {
    await assertBinding(c6, v6.stunPort!, '::1', '::1', 6);
    // One dual-stack socket: an IPv4 client is told its IPv4 address, not ::ffff:127.0.0.1.
    await assertBinding(client, wild.stunPort!, '127.0.0.1', '127.0.0.1', 4);
    await assertBinding(c6, wild.stunPort!, '::1', '::1', 6);
  } finally {
    await c6.close();
    await v6.close();
    await wild.close();
  }
});

test('close() frees the STUN port; stunPort null starts no STUN server; a taken port fails start', async () => {
  const r = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: 0 });
  const port = r.stunPort!;
  await r.close();
  await r.close(); // idempotent
  const again = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: port });
  assert.equal(again.stunPort, port, 'the port was released by close()');
  await assert.rejects(startRegistry({ host: '127.0.0.1', port: 0, stunPort: port }), /STUN udp port \d+: .*EADDRINUSE/);
  await again.close();
  const off = await startRegistry({ host: '127.0.0.1', port: 0, stunPort: null });
  try {
    assert.equal(off.stunPort, null);
    assert.doesNotMatch((await call(off.url, 'GET', '/metrics')).text, /stun/);
  } finally {
    await off.close();
  }
});
