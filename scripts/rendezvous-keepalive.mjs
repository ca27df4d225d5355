// Sends one KEEPALIVE to a registry's UDP port (README.md, "Rendezvous"; PROTOCOL.md 9.2) and
// prints what its KEEPALIVE_ACK says: the sequence echoed and the address the registry saw. Node's
// crypto, dgram and zlib only, so it doubles as a reference for clients in other languages.
//   node scripts/rendezvous-keepalive.mjs HOST:UDP_PORT NAME TOKEN [SEQUENCE]
// SEQUENCE defaults to the time in milliseconds (it must grow from one keepalive to the next).
import { createHash, createHmac } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { crc32 } from 'node:zlib';

const [target, name, token, sequence = String(Date.now())] = process.argv.slice(2);
const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target ?? '');
if (!m || !name || !token || !/^\d+$/.test(sequence)) {
  console.error('usage: node scripts/rendezvous-keepalive.mjs HOST:UDP_PORT NAME TOKEN [SEQUENCE]');
  process.exit(2);
}
const [, host, port] = m;

// "PS" | version 2 | type 0x20 | u32 0 | u8 name length | name | u64 sequence | zero padding (to 40
// bytes in all) | mac (16) | CRC-32, the mac = HMAC-SHA256(SHA-256(token), every byte before it)[0..16].
const nameBytes = Buffer.from(name, 'utf8');
const head = Buffer.alloc(8 + 1 + nameBytes.length + 8);
head.write('PS', 0, 'latin1');
head[2] = 2;
head[3] = 0x20;
head[8] = nameBytes.length;
nameBytes.copy(head, 9);
head.writeBigUInt64BE(BigInt(sequence), 9 + nameBytes.length);
const signed = Buffer.concat([head, Buffer.alloc(Math.max(0, 40 - head.length - 16 - 4))]);
const key = createHash('sha256').update(token, 'utf8').digest();
const mac = createHmac('sha256', key).update(signed).digest().subarray(0, 16);
const frame = Buffer.concat([signed, mac, Buffer.alloc(4)]);
frame.writeUInt32BE(crc32(frame.subarray(0, frame.length - 4)), frame.length - 4);

const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
const timer = setTimeout(() => {
  console.error('no KEEPALIVE_ACK within 2 s (unknown name, wrong token, or a sequence not above the last)');
  process.exit(1);
}, 2000);
socket.on('message', (ack) => {
  // "PS" | 2 | 0x21 | u32 0 | u64 sequence | u8 family (4|6) | address | u16 port | CRC-32
  if (ack.length < 27 || ack[3] !== 0x21) return;
  const family = ack[16];
  const addr = ack.subarray(17, 17 + (family === 4 ? 4 : 16));
  const ip = family === 4 ? [...addr].join('.') : addr.toString('hex').match(/.{4}/g).join(':');
  console.log(`acknowledged sequence ${ack.readBigUInt64BE(8)}; the registry sees this socket as ${ip}:${ack.readUInt16BE(17 + addr.length)}`);
  clearTimeout(timer);
  socket.close();
});
socket.send(frame, Number(port), host);
