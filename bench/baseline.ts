// The platform ceilings our transfers are compared with, each in its own Node processes:
// - a bare dgram blast: one process sends fixed-size datagrams as fast as Node lets it, another
//   counts what arrives (no file, no checksum, no acknowledgement: the most UDP can do here);
// - a bare TCP pipe: a server streams a file with fs.createReadStream -> socket, a client writes
//   socket -> fs.createWriteStream, timed from the client's spawn to its exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { timeNode, type ProcessRun } from './util';

const BUFFER_BYTES = 4 * 1024 * 1024; // the same socket buffers the peer's Endpoint asks for

const DGRAM_RECEIVER = `
const dgram = require('node:dgram');
const { performance } = require('node:perf_hooks');
const s = dgram.createSocket({ type: 'udp4', recvBufferSize: ${BUFFER_BYTES} });
let bytes = 0, count = 0, first = 0, last = 0;
s.on('message', (m) => { const t = performance.now(); if (count === 0) first = t; last = t; count++; bytes += m.length; });
s.bind(0, '127.0.0.1', () => console.log('port ' + s.address().port));
const started = performance.now();
const check = setInterval(() => {
  const now = performance.now();
  // Done once nothing arrived for 400 ms after the first datagram (or nothing at all for 30 s).
  if ((count > 0 && now - last > 400) || now - started > 30000) {
    clearInterval(check);
    console.log(JSON.stringify({ bytes, count, seconds: (last - first) / 1000 }));
    s.close();
  }
}, 50);
`;

const DGRAM_SENDER = `
const dgram = require('node:dgram');
const [port, total, payload] = process.argv.slice(1).map(Number);
const s = dgram.createSocket({ type: 'udp4', sendBufferSize: ${BUFFER_BYTES} });
const buf = Buffer.alloc(payload, 0x5a);
const count = Math.ceil(total / payload);
let sent = 0, inflight = 0;
// At most 64 sends queued in libuv at once: as fast as the socket takes them, bounded memory.
function pump() { while (inflight < 64 && sent < count) { inflight++; sent++; s.send(buf, port, '127.0.0.1', done); } }
function done() { inflight--; if (sent < count) pump(); else if (inflight === 0) s.close(); }
s.bind(0, '127.0.0.1', pump);
`;

export interface BlastResult {
  sentBytes: number;
  receivedBytes: number;
  /** First to last datagram received, at the receiver. */
  seconds: number;
}

/**
 * Blasts `totalBytes` in `payload`-byte datagrams over loopback between two processes; `via`,
 * given the receiver's port, returns the port to send to instead (a relay in front of it).
 */
export async function dgramBlast(totalBytes: number, payload: number, via?: (receiverPort: number) => Promise<number>): Promise<BlastResult> {
  const receiver = spawn(process.execPath, ['-e', DGRAM_RECEIVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const lines = lineReader(receiver);
    const receiverPort = Number((await lines.next(/^port (\d+)/, 10_000))[1]);
    const port = via ? await via(receiverPort) : receiverPort;
    const sender = await timeNode(['-e', DGRAM_SENDER, String(port), String(totalBytes), String(payload)], { timeoutMs: 60_000 });
    if (sender.code !== 0) throw new Error(`dgram sender failed: ${sender.stderr.trim()}`);
    const result = JSON.parse((await lines.next(/^\{.*\}$/, 35_000))[0]) as { bytes: number; count: number; seconds: number };
    return { sentBytes: Math.ceil(totalBytes / payload) * payload, receivedBytes: result.bytes, seconds: result.seconds };
  } finally {
    receiver.kill('SIGKILL');
  }
}

const TCP_SERVER = `
const net = require('node:net');
const fs = require('node:fs');
const file = process.argv[1];
const server = net.createServer((sock) => { fs.createReadStream(file).pipe(sock); sock.on('error', () => {}); });
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
process.on('SIGTERM', () => process.exit(0));
`;

const TCP_CLIENT = `
const net = require('node:net');
const fs = require('node:fs');
const [port, out] = [Number(process.argv[1]), process.argv[2]];
const sock = net.connect(port, '127.0.0.1');
const file = fs.createWriteStream(out);
sock.pipe(file);
file.on('finish', () => process.exit(0));
sock.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

/** A bare Node TCP file server: start once, then time `pipeOnce` clients against it. */
export async function startBareTcpServer(file: string): Promise<{ pipeOnce(outDir: string): Promise<ProcessRun>; close(): void }> {
  const server = spawn(process.execPath, ['-e', TCP_SERVER, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = Number((await lineReader(server).next(/^port (\d+)/, 10_000))[1]);
  return {
    async pipeOnce(outDir: string) {
      const out = join(outDir, 'bare-tcp.bin');
      const run = await timeNode(['-e', TCP_CLIENT, String(port), out], { timeoutMs: 120_000 });
      await rm(out, { force: true });
      return run;
    },
    close: () => server.kill('SIGTERM'),
  };
}

/** Waits for stdout lines of a child matching a pattern. */
function lineReader(proc: ChildProcess): { next(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> } {
  let buffered = '';
  const waiters = new Set<() => void>();
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    waiters.forEach((w) => w());
  });
  proc.on('close', () => waiters.forEach((w) => w()));
  return {
    next(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const lines = buffered.split('\n');
          for (let i = 0; i < lines.length - 1; i++) {
            const m = lines[i]!.match(re);
            if (m) {
              buffered = lines.slice(i + 1).join('\n');
              done();
              resolve(m);
              return;
            }
          }
          if (proc.exitCode !== null || proc.signalCode !== null) {
            done();
            reject(new Error(`baseline process exited before printing ${re}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`baseline process did not print ${re} within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}
