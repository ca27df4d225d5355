// A UDP agent run inside a network namespace (see netns-udp.ts, which drives it): plain dgram
// sockets, a STUN client (the project's codec) and the project's STUN server, commanded by JSON
// lines on stdin. Answers `{"id":N,"ok":true,...}` or `{"id":N,"ok":false,"error":"..."}`;
// every datagram a socket receives (STUN answers to its own requests apart) is reported as
// `{"event":"message","sock":S,"address":A,"port":P,"data":BASE64}`. Exits when stdin closes.
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { startStunServer } from '../../src/registry/stun-server';
import { Attr, StunClass, decodeAddress, decodeStunMessage, encodeBindingRequest } from '../../src/wire/stun';

type Command = { id: number } & (
  | { op: 'bind'; address: string; port: number }
  | { op: 'send'; sock: number; address: string; port: number; data: string; times: number; intervalMs: number }
  | { op: 'stun'; sock: number; address: string; port: number; timeoutMs: number }
  | { op: 'stunServer'; address: string; port: number }
);

const sockets: dgram.Socket[] = [];
/** STUN transactions in flight, by hex transaction id. */
const transactions = new Map<string, (mapped: { address: string; port: number }) => void>();
/** Every transaction this agent ever started: answers to its retransmissions that come late are not datagrams a test sent. */
const ownTransactions = new Set<string>();

function write(o: object): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function socketOf(n: number): dgram.Socket {
  const s = sockets[n];
  if (!s) throw new Error(`no socket ${n}`);
  return s;
}

function sendOne(s: dgram.Socket, data: Buffer, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => s.send(data, port, address, (err) => (err ? reject(err) : resolve())));
}

async function handle(c: Command): Promise<object> {
  switch (c.op) {
    case 'bind': {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(c.port, c.address, () => resolve());
      });
      const n = sockets.push(s) - 1;
      s.on('error', (err) => write({ event: 'error', sock: n, error: String(err) }));
      s.on('message', (msg, from) => {
        const decoded = msg.length >= 20 ? decodeStunMessage(msg) : null;
        if (decoded?.ok && decoded.message.cls === StunClass.success) {
          const done = transactions.get(decoded.message.transactionId.toString('hex'));
          const xor = decoded.message.attributes.find((a) => a.type === Attr.XOR_MAPPED_ADDRESS);
          const mapped = xor && decodeAddress(xor.value, decoded.message.transactionId);
          if (done && mapped) return done(mapped);
          // A late answer to one of our own retransmissions (the first answer already counted).
          if (ownTransactions.has(decoded.message.transactionId.toString('hex'))) return;
        }
        write({ event: 'message', sock: n, address: from.address, port: from.port, data: msg.toString('base64') });
      });
      return { sock: n, port: s.address().port };
    }
    case 'send': {
      const s = socketOf(c.sock);
      const data = Buffer.from(c.data, 'base64');
      for (let i = 0; i < c.times; i++) {
        if (i > 0) await sleep(c.intervalMs);
        await sendOne(s, data, c.port, c.address);
      }
      return {};
    }
    case 'stun': {
      const s = socketOf(c.sock);
      const id = randomBytes(12);
      const request = encodeBindingRequest(id, { fingerprint: true });
      let answered: { address: string; port: number } | undefined;
      transactions.set(id.toString('hex'), (mapped) => (answered = mapped));
      ownTransactions.add(id.toString('hex'));
      try {
        // Retransmitted every 200 ms: one lost datagram is not a failed test.
        for (const deadline = Date.now() + c.timeoutMs; !answered && Date.now() < deadline; ) {
          await sendOne(s, request, c.port, c.address);
          for (let waited = 0; !answered && waited < 200; waited += 10) await sleep(10);
        }
      } finally {
        transactions.delete(id.toString('hex'));
      }
      if (!answered) throw new Error(`no STUN answer from ${c.address}:${c.port} within ${c.timeoutMs} ms`);
      return { mapped: answered };
    }
    case 'stunServer': {
      const server = await startStunServer({ host: c.address, port: c.port });
      return { port: server.port };
    }
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === '') return;
  const c = JSON.parse(line) as Command;
  handle(c).then(
    (result) => write({ id: c.id, ok: true, ...result }),
    (err: unknown) => write({ id: c.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
}).on('close', () => process.exit(0));
write({ event: 'ready' });
