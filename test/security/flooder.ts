// The INIT flood of cookie-flood.test.ts, in a process of its own so that generating it does not
// take the owner's event loop (nor count in its heap): the owner's timings are its own.
//   node --import tsx flooder.ts PORT PUBLIC_KEY(base64url) NAME RATE
// Makes 4,000 distinct genuine INITs (16 identities) for the owner, then sends them over and over
// from 64 sockets on 127.0.0.1 at RATE a second on average; beside them a smarter flooder on
// 127.0.0.2 opens the cookie the owner sends it (its key is derived from the owner's public key)
// and sends INITs carrying a valid mac2, 100 a second. The flood never lets the owner's socket
// queue more than 256 KiB (read from /proc/net/udp): past that it waits, so a machine too busy to
// give the owner the CPU for RATE INITs a second gets a flood at what the owner can read, not
// seconds of queue that every datagram (a legitimate requester's too) would wait behind. Prints
// "flooding" once under way; on SIGTERM, one JSON line: {sent, smartSent, bytesSent,
// bytesReceived, cookie, seconds, heldBackMs}.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PrivateKey } from '../../src/core/x25519';
import { cookieReplyKey, mac, openCookie } from '../../src/crypto/cookie';
import { Initiator } from '../../src/net/handshake';
import { decodeClearFrame, Envelope, writeCrc } from '../../src/wire/frame';
import { decodeCookieReply, decodeInit, MAC2_AT } from '../../src/wire/handshake';
import { freshInit, RawSocket, type OwnerRef } from './support';

const MAX_QUEUED = 256 * 1024;

/** Bytes waiting in the receive queue of the UDP socket bound to `port` (Linux, /proc/net/udp). */
function queued(port: number): number {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let table: string;
  try {
    table = readFileSync('/proc/net/udp', 'utf8');
  } catch {
    return 0; // not Linux: no holding back
  }
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(local) && f[2] === '00000000:0000') return parseInt(f[4]!.split(':')[1]!, 16);
  }
  return 0;
}

async function main(): Promise<void> {
  const owner: OwnerRef = { address: { address: '127.0.0.1', port: Number(process.argv[2]) }, publicKey: Buffer.from(process.argv[3]!, 'base64url'), name: process.argv[4]! };
  const rate = Number(process.argv[5]);
  const initiators = Array.from({ length: 16 }, () => new Initiator(PrivateKey.generate()));
  const mac1Of = new Map<number, Buffer>();
  const pool = Array.from({ length: 4000 }, (_, i) => {
    const { index, datagram } = freshInit(initiators[i % 16]!, owner);
    initiators[i % 16]!.end(index);
    const f = decodeClearFrame(datagram);
    if (typeof f !== 'string') mac1Of.set(f.id, decodeInit(f)!.mac1);
    return datagram;
  });
  const flooders = await Promise.all(Array.from({ length: 64 }, () => RawSocket.bind('127.0.0.1', 0)));
  const smart = await RawSocket.bind('127.0.0.2', 0);
  let cookie: Buffer | null = null;
  smart.onMessage((data) => {
    const f = decodeClearFrame(data);
    if (cookie || typeof f === 'string' || f.type !== Envelope.cookieReply) return;
    const reply = decodeCookieReply(f)!;
    cookie = openCookie(cookieReplyKey(owner.publicKey), reply.sealedCookie, mac1Of.get(reply.receiverIndex)!);
  });
  let flooding = true;
  process.once('SIGTERM', () => (flooding = false));
  const started = performance.now();
  let sent = 0;
  let smartSent = 0;
  let heldBackMs = 0;
  for (let tick = 0; flooding; tick++) {
    if (queued(owner.address.port) > MAX_QUEUED) {
      const since = performance.now();
      await sleep(10);
      heldBackMs += performance.now() - since;
      continue;
    }
    // As many as are due at `rate` since the start, less the time held back (a late tick is made
    // up, 1/20 s at most at once).
    const due = Math.min(sent + rate / 20, Math.floor(((performance.now() - started - heldBackMs) / 1000) * rate));
    for (; sent < due; sent++) void flooders[sent % flooders.length]!.send(pool[sent % pool.length]!, owner.address);
    const d = Buffer.from(pool[(tick * 7) % pool.length]!);
    if (cookie) {
      d.set(mac(cookie, d.subarray(0, MAC2_AT)), MAC2_AT);
      writeCrc(d);
    }
    void smart.send(d, owner.address);
    smartSent++;
    if (tick === 0) process.stdout.write('flooding\n');
    await sleep(10);
  }
  const seconds = (performance.now() - started) / 1000;
  const all = [...flooders, smart];
  const sum = (k: 'bytesSent' | 'bytesReceived') => all.reduce((n, f) => n + f[k], 0);
  process.stdout.write(`${JSON.stringify({ sent, smartSent, bytesSent: sum('bytesSent'), bytesReceived: sum('bytesReceived'), cookie: cookie !== null, seconds, heldBackMs: Math.round(heldBackMs) })}\n`);
  await Promise.all(all.map((f) => f.close()));
}

void main();
