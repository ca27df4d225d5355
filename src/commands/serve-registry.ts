import type { Command } from './args';
import { intOpt, stringOpt, untilSignalled, usage } from './args';
import { P2pError } from '../core/errors';
import { startRegistry } from '../registry/index';

export const serveRegistryCommand: Command = {
  name: 'serve-registry',
  summary: 'run the registry (HTTP rendezvous + STUN)',
  help: `Usage: p2pshare serve-registry [--host 0.0.0.0] [--port 8000] [--redis URL] [--ttl 30] [--stun-port 3478]

Runs the registry: peers register a unique name there and find each other (JSON over HTTP),
and learn their outside address from its STUN server (UDP).

Options:
  --host HOST       address to listen on (default 0.0.0.0)
  --port N          HTTP port (default 8000; 0 = any free port)
  --redis URL       keep peers in Redis (default $P2PSHARE_REDIS_URL; else in memory)
  --ttl SECONDS     a registration lives this long after its last heartbeat (default 30)
  --stun-port N     UDP port of the STUN server (default 3478; 0 = any free port)

Prints one line once ready, then serves until SIGINT/SIGTERM.`,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    redis: { type: 'string' },
    ttl: { type: 'string' },
    'stun-port': { type: 'string' },
  },
  positionals: [0, 0],
  async run(args) {
    const host = stringOpt(args, 'host') ?? '0.0.0.0';
    const port = intOpt(args, 'port', 8000, 0, 65535);
    const ttl = intOpt(args, 'ttl', 30, 1, 86_400);
    const stunPort = intOpt(args, 'stun-port', 3478, 0, 65535);
    const redisUrl = stringOpt(args, 'redis') ?? (process.env.P2PSHARE_REDIS_URL || undefined);
    if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
      throw usage(`--redis must be a redis:// or rediss:// URL, got '${redisUrl}'`);
    }
    let registry;
    try {
      registry = await startRegistry({ host, port, ttl, stunPort, ...(redisUrl ? { redisUrl } : {}) });
    } catch (err) {
      throw new P2pError('FAILED', `serve-registry: cannot listen on ${host}:${port}: ${(err as Error).message}`, { cause: err });
    }
    const stun = registry.stunPort === null ? 'stun: off' : `stun: udp port ${registry.stunPort}`;
    process.stdout.write(`registry listening on ${registry.url} (store: ${registry.store}, ${stun})\n`);
    await untilSignalled();
    // Shutdown is bounded: whatever is still open after 3 s is abandoned.
    await Promise.race([registry.close(), new Promise((r) => setTimeout(r, 3000).unref())]);
  },
};
