// The floor under the registry for the load bench: a bare node:http server answering the
// registry's routes with answers of the same shapes and no work behind them (no store, no
// limits, no proof checked). Plain JavaScript, so it starts as fast as node itself.
//   node bench/bare-registry.cjs   (prints "registry listening on http://127.0.0.1:PORT")
const http = require('node:http');
const { generateKeyPairSync, randomBytes } = require('node:crypto');

// A real X25519 public key, so the generator's proof computation is the same as against a registry.
const jwk = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
const json = (res, status, value) => {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
};
const server = http.createServer((req, res) => {
  let size = 0;
  req.on('data', (d) => (size += d.length));
  req.on('end', () => {
    const path = req.url.split('?')[0];
    if (req.method === 'GET' && path === '/v1/challenge') {
      json(res, 200, { challenge: randomBytes(40).toString('base64url'), registryKey: jwk.x, expires: new Date(Date.now() + 60_000).toISOString(), rendezvous: null });
    } else if (req.method === 'POST' && path === '/v1/peers') {
      json(res, 201, { name: 'peer', token: randomBytes(32).toString('base64url'), ttl: 30, observedAddress: req.socket.remoteAddress });
    } else if (req.method === 'POST' && path.endsWith('/heartbeat')) {
      json(res, 200, { ttl: 30 });
    } else if (req.method === 'GET' && path === '/v1/peers') {
      json(res, 200, { peers: [], next: null });
    } else if (req.method === 'GET' && path.startsWith('/v1/peers/')) {
      json(res, 200, { name: path.slice(10), ip: '127.0.0.1', port: 4000, addresses: [], publicKey: jwk.x, lastSeen: new Date().toISOString() });
    } else json(res, 404, { error: { code: 'not_found', message: 'no such route' } });
  });
});
server.listen(0, '127.0.0.1', () => console.log(`registry listening on http://127.0.0.1:${server.address().port}`));
process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
