import { isIP } from 'node:net';
import type { Command } from './args';
import { boolOpt, intOpt, stringOpt, readyUntilSignalled, usage } from './args';
import { P2pError } from '../core/errors';
import { raiseFileLimit } from '../registry/fd-limit';
import { parseRedisTarget } from '../registry/redis-target';
import { startRegistry } from '../registry/index';
import { DEFAULT_LIMITS, DEFAULT_MAX_PEERS } from '../registry/limits';
import { DEFAULT_RELAY_LIMITS } from '../registry/relay';

const MiB = 1024 * 1024;

/** --advertise-udp HOST[:PORT]: an IPv4 or IPv6 address ([::1]:3478 with a port), the port optional. */
export function parseAdvertiseUdp(raw: string): { ip: string; port?: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(raw) ?? (isIP(raw) === 6 ? [raw, raw] : /^([^:]+)(?::(\d+))?$/.exec(raw));
  const ip = m?.[1];
  const port = m?.[2] === undefined ? undefined : Number(m[2]);
  if (!ip || isIP(ip) === 0 || (port !== undefined && (port < 1 || port > 65535))) {
    throw usage(`--advertise-udp must be an IP address with an optional port (203.0.113.5:3478, [2001:db8::5]:3478), got '${raw}'`);
  }
  return port === undefined ? { ip } : { ip, port };
}

export const serveRegistryCommand: Command = {
  name: 'serve-registry',
  summary: 'run the registry (HTTP API, STUN, rendezvous and relay)',
  help: `Usage: p2pshare serve-registry [--host 0.0.0.0] [--port 8000] [--redis URL] [--ttl 30] [--stun-port 3478]
                               [--advertise-udp HOST[:PORT]] [--no-relay] [--relay-sessions N] [--relay-session-rate N]
                               [--relay-session-mib N] [--relay-rate N] [--relay-idle SECONDS]
                               [--max-peers N] [--max-names-per-ip N] [--registrations-per-minute N]
                               [--challenges-per-minute N] [--max-connections N] [--max-connections-per-ip N]

Runs the registry: peers register a unique name there and find each other (JSON over HTTP); on
one UDP port they learn their outside address (STUN), keep their NAT mapping alive, get
introduced to each other, and are relayed when no direct path opens. Open the HTTP port (TCP) and
the UDP port.

Options:
  --host HOST       address to listen on (default 0.0.0.0)
  --port N          HTTP port (default 8000; 0 = any free port)
  --redis URL       keep peers in Redis (default $P2PSHARE_REDIS_URL; else in memory): one Redis
                    as redis://HOST:PORT (rediss:// for TLS), a Redis Cluster as its seed nodes
                    redis-cluster://HOST:PORT,HOST:PORT,... (rediss-cluster:// for TLS)
  --ttl SECONDS     a registration lives this long after its last heartbeat (default 30)
  --stun-port N     UDP port for STUN, keepalives, introductions and the relay (default 3478;
                    0 = any free port)
  --advertise-udp HOST[:PORT]
                    the address peers reach this process's UDP port at (behind a NAT or port
                    mapping); the port defaults to --stun-port's. Default: --host when it is not
                    0.0.0.0 or ::, else none. With Redis, another registry can hand this process's
                    peers a relay only when it has one

Relay (on by default; a datagram over a rate cap is dropped):
  --no-relay                     never relay
  --relay-sessions N             sessions held at once (default ${DEFAULT_RELAY_LIMITS.maxSessions})
  --relay-session-rate N         MiB/s per session, both directions together (default ${DEFAULT_RELAY_LIMITS.sessionBytesPerSecond / MiB})
  --relay-session-mib N          MiB per session in all, then it ends (default ${DEFAULT_RELAY_LIMITS.sessionBytes / MiB})
  --relay-rate N                 MiB/s over all sessions (default ${DEFAULT_RELAY_LIMITS.totalBytesPerSecond / MiB})
  --relay-idle SECONDS           a session idle this long is forgotten (default ${DEFAULT_RELAY_LIMITS.idleMs / 1000})

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
    'advertise-udp': { type: 'string' },
    'no-relay': { type: 'boolean' },
    'relay-sessions': { type: 'string' },
    'relay-session-rate': { type: 'string' },
    'relay-session-mib': { type: 'string' },
    'relay-rate': { type: 'string' },
    'relay-idle': { type: 'string' },
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
    if (redisUrl !== undefined) {
      if (!/^rediss?(-cluster)?:\/\//i.test(redisUrl)) {
        throw usage(`--redis must be a redis://, rediss:// or redis-cluster://HOST:PORT,HOST:PORT,... URL, got '${redisUrl}'`);
      }
      try {
        parseRedisTarget(redisUrl);
      } catch (err) {
        throw usage(`--redis: ${(err as Error).message}`);
      }
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
    const d = DEFAULT_RELAY_LIMITS;
    const relay = boolOpt(args, 'no-relay')
      ? false
      : {
          maxSessions: intOpt(args, 'relay-sessions', d.maxSessions, 1, 1_000_000),
          sessionBytesPerSecond: intOpt(args, 'relay-session-rate', d.sessionBytesPerSecond / MiB, 1, 100_000) * MiB,
          sessionBytes: intOpt(args, 'relay-session-mib', d.sessionBytes / MiB, 1, 100_000_000) * MiB,
          totalBytesPerSecond: intOpt(args, 'relay-rate', d.totalBytesPerSecond / MiB, 1, 1_000_000) * MiB,
          idleMs: intOpt(args, 'relay-idle', d.idleMs / 1000, 1, 86_400) * 1000,
        };
    const advertised = stringOpt(args, 'advertise-udp');
    const advertiseUdp = advertised === undefined ? undefined : parseAdvertiseUdp(advertised);
    // Every connection is a file descriptor: get as many as this process may have, before the caps are sized.
    raiseFileLimit();
    let registry;
    try {
      registry = await startRegistry({
        host, port, ttl, stunPort, limits, relay, debug: args.debug, ...(redisUrl ? { redisUrl } : {}), ...(advertiseUdp ? { advertiseUdp } : {}),
      });
    } catch (err) {
      throw new P2pError('FAILED', `serve-registry: cannot listen on ${host}:${port}: ${(err as Error).message}`, { cause: err });
    }
    const stun = registry.stunPort === null ? 'stun: off' : `stun: udp port ${registry.stunPort}`;
    const signalled = readyUntilSignalled(`registry listening on ${registry.url} (store: ${registry.store}, ${stun})`);
    if (registry.connectionsLowered) {
      process.stderr.write(`registry: --max-connections lowered to ${registry.limits.maxConnections}, what the open-file limit (ulimit -n) allows\n`);
    }
    await signalled;
    // Shutdown is bounded: whatever is still open after 3 s is abandoned.
    await Promise.race([registry.close(), new Promise((r) => setTimeout(r, 3000).unref())]);
  },
};
