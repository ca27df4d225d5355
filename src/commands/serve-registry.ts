import type { Command } from './args';
import { intOpt, stringOpt, untilSignalled, usage } from './args';
import { P2pError } from '../core/errors';
import { raiseFileLimit } from '../registry/fd-limit';
import { startRegistry } from '../registry/index';
import { DEFAULT_LIMITS, DEFAULT_MAX_PEERS } from '../registry/limits';

export const serveRegistryCommand: Command = {
  name: 'serve-registry',
  summary: 'run the registry (HTTP rendezvous + STUN)',
  help: `Usage: p2pshare serve-registry [--host 0.0.0.0] [--port 8000] [--redis URL] [--ttl 30] [--stun-port 3478]
                               [--max-peers N] [--max-names-per-ip N] [--registrations-per-minute N]
                               [--challenges-per-minute N] [--max-connections N] [--max-connections-per-ip N]

Runs the registry: peers register a unique name there and find each other (JSON over HTTP),
and learn their outside address from its STUN server (UDP).

Options:
  --host HOST       address to listen on (default 0.0.0.0)
  --port N          HTTP port (default 8000; 0 = any free port)
  --redis URL       keep peers in Redis (default $P2PSHARE_REDIS_URL; else in memory)
  --ttl SECONDS     a registration lives this long after its last heartbeat (default 30)
  --stun-port N     UDP port of the STUN server (default 3478; 0 = any free port)

Limits (a client is one source IPv4 address, or one IPv6 /64; over a limit: 429 with Retry-After):
  --max-peers N                  live registrations in all (default ${DEFAULT_MAX_PEERS}); with Redis, shared
                                 by every registry on it; past it a new name gets 503 registry_full
  --max-names-per-ip N           live names registered from one client (default ${DEFAULT_LIMITS.maxNamesPerIp})
  --registrations-per-minute N   registrations per client per minute, burst as large (default ${DEFAULT_LIMITS.registrationsPerMinute}; 0 = off)
  --challenges-per-minute N      GET /v1/challenge per client per minute (default ${DEFAULT_LIMITS.challengesPerMinute}; 0 = off)
  --max-connections N            HTTP connections held at once (default and most: 90 % of the
                                 open-file limit, at most that limit less 128); at the cap a newcomer
                                 takes the place of the oldest idle connection of the greediest client
  --max-connections-per-ip N     HTTP connections held at once per client (default ${DEFAULT_LIMITS.maxConnectionsPerIp})

Request headers must arrive within 1 s and a whole request within 2 s; idle keep-alive
connections close after 5 s. At start the open-file limit is raised to its hard limit (with
prlimit, where installed).

Prints one line once ready, then serves until SIGINT/SIGTERM. Logs go to stderr, one line per
event (repeated ones summed once a minute); --debug adds stacks of unexpected errors.`,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    redis: { type: 'string' },
    ttl: { type: 'string' },
    'stun-port': { type: 'string' },
    'max-peers': { type: 'string' },
    'max-names-per-ip': { type: 'string' },
    'registrations-per-minute': { type: 'string' },
    'challenges-per-minute': { type: 'string' },
    'max-connections': { type: 'string' },
    'max-connections-per-ip': { type: 'string' },
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
    const maxConnections = stringOpt(args, 'max-connections') === undefined ? undefined : intOpt(args, 'max-connections', 0, 16, 10_000_000);
    const limits = {
      maxPeers: intOpt(args, 'max-peers', DEFAULT_LIMITS.maxPeers, 1, 100_000_000),
      maxNamesPerIp: intOpt(args, 'max-names-per-ip', DEFAULT_LIMITS.maxNamesPerIp, 1, 100_000_000),
      registrationsPerMinute: intOpt(args, 'registrations-per-minute', DEFAULT_LIMITS.registrationsPerMinute, 0, 1_000_000),
      challengesPerMinute: intOpt(args, 'challenges-per-minute', DEFAULT_LIMITS.challengesPerMinute, 0, 1_000_000),
      maxConnectionsPerIp: intOpt(args, 'max-connections-per-ip', DEFAULT_LIMITS.maxConnectionsPerIp, 1, 10_000_000),
      ...(maxConnections !== undefined ? { maxConnections } : {}),
    };
    // Every connection is a file descriptor: get as many as this process may have, before the caps are sized.
    raiseFileLimit();
    let registry;
    try {
      registry = await startRegistry({ host, port, ttl, stunPort, limits, debug: args.debug, ...(redisUrl ? { redisUrl } : {}) });
    } catch (err) {
      throw new P2pError('FAILED', `serve-registry: cannot listen on ${host}:${port}: ${(err as Error).message}`, { cause: err });
    }
    const stun = registry.stunPort === null ? 'stun: off' : `stun: udp port ${registry.stunPort}`;
    process.stdout.write(`registry listening on ${registry.url} (store: ${registry.store}, ${stun})\n`);
    if (registry.connectionsLowered) {
      process.stderr.write(`registry: --max-connections lowered to ${registry.limits.maxConnections}, what the open-file limit (ulimit -n) allows\n`);
    }
    await untilSignalled();
    // Shutdown is bounded: whatever is still open after 3 s is abandoned.
    await Promise.race([registry.close(), new Promise((r) => setTimeout(r, 3000).unref())]);
  },
};
