// The registry's UDP socket: it answers STUN Binding requests (README "STUN") and hands the
// rendezvous frames ("PS", version 2, types 0x20-0x2f) to the rendezvous (rendezvous.ts).
// All STUN decisions live in ../wire/stun (pure); this file is only the socket around them.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { StunOutcome } from './metrics';
import type { Endpoint } from './store';
import { rendezvousTypeOf } from '../wire/rendezvous';
import { type DropCategory, classifyRequest, encodeBindingSuccess, encodeUnknownAttributes, normalizeSource } from '../wire/stun';

/**
 * Datagrams larger than this are dropped unread. A Binding request is 20-100 bytes; RFC 8489
 * keeps STUN over UDP under the path MTU, so anything over an Ethernet MTU is not a client of ours.
 */
export const MAX_STUN_DATAGRAM_BYTES = 1500;

export const STUN_SOFTWARE = 'p2pshare registry';

export interface StunServerOptions {
  /** Address to bind. A wildcard ('0.0.0.0' or '::') gets one dual-stack socket (IPv4 and IPv6). */
  host: string;
  /** 0 = any free port. */
  port: number;
  software?: string;
  /** Told what became of every STUN datagram (for /metrics). */
  count?: (outcome: StunOutcome) => void;
  /** Where rendezvous frames go, with their source (IPv4-mapped IPv6 as IPv4); without it they are dropped as STUN. */
  frames?: (datagram: Buffer, from: Endpoint) => void;
}

export interface StunServer {
  /** The port actually bound. */
  port: number;
  /** 'IPv4' or 'IPv6' (a dual-stack socket says IPv6). */
  family: string;
  /** Sends from this socket; `failed` is told when the kernel refused it. */
  send(datagram: Buffer, to: Endpoint, failed?: () => void): void;
  close(): Promise<void>;
}

export async function startStunServer(opts: StunServerOptions): Promise<StunServer> {
  const software = opts.software ?? STUN_SOFTWARE;
  const count = opts.count ?? (() => {});
  const socket = await bindSocket(opts.host, opts.port);

  socket.on('message', (datagram: Buffer, from: RemoteInfo) => {
    // A handler that throws would take the process down: nothing below should, but be sure.
    try {
      if (opts.frames && rendezvousTypeOf(datagram) !== null) {
        const source = normalizeSource(from.address, from.port);
        if (source) opts.frames(datagram, { ip: source.address, port: source.port });
        return;
      }
      const reply = answer(datagram, from, software, count);
      if (reply) {
        socket.send(reply, from.port, from.address, (err) => {
          if (err) count('send_failed');
        });
      }
    } catch {
      count('dropped_malformed');
    }
  });
  // Errors after bind (e.g. ICMP unreachable reported on some systems) must not crash the registry.
  socket.on('error', () => count('send_failed'));

  let closing: Promise<void> | undefined;
  const address = socket.address();
  // A dual-stack socket reaches IPv4 addresses in their IPv4-mapped form.
  const mapped = address.family === 'IPv6' && isWildcard(opts.host) ? '::ffff:' : '';
  return {
    port: address.port,
    family: address.family,
    send(datagram, to, failed) {
      const ip = mapped && !isIPv6(to.ip) ? mapped + to.ip : to.ip;
      try {
        socket.send(datagram, to.port, ip, (err) => {
          if (err) failed?.();
        });
      } catch {
        failed?.(); // closed, or an address of the other family
      }
    },
    close() {
      closing ??= new Promise<void>((resolve) => socket.close(() => resolve()));
      return closing;
    },
  };
}

const DROP_OUTCOME: Record<DropCategory, StunOutcome> = {
  malformed: 'dropped_malformed',
  fingerprint: 'dropped_fingerprint',
  not_binding_request: 'dropped_not_binding_request',
};

/** The reply to one datagram, or null to stay silent. Counts the outcome. */
function answer(datagram: Buffer, from: RemoteInfo, software: string, count: (o: StunOutcome) => void): Buffer | null {
  if (datagram.length > MAX_STUN_DATAGRAM_BYTES) {
    count('dropped_oversize');
    return null;
  }
  const verdict = classifyRequest(datagram);
  switch (verdict.kind) {
    case 'drop':
      count(DROP_OUTCOME[verdict.category]);
      return null;
    case 'unknown-attributes':
      count('unknown_attributes');
      return encodeUnknownAttributes(verdict.message, verdict.unknown, software);
    case 'binding': {
      const source = normalizeSource(from.address, from.port);
      if (!source) {
        count('dropped_malformed');
        return null;
      }
      count('answered');
      return encodeBindingSuccess(verdict.message, source, software);
    }
  }
}

/** 0.0.0.0, :: or empty: every address of the host. */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** Binds the socket; a wildcard host falls back to IPv4 only when this host has no IPv6. */
async function bindSocket(host: string, port: number): Promise<Socket> {
  if (isWildcard(host)) {
    try {
      return await bindOne('udp6', '::', port, false);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL' && code !== 'EINVAL') throw err;
      return bindOne('udp4', '0.0.0.0', port, false);
    }
  }
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return bindOne(isIPv6(bare) ? 'udp6' : 'udp4', bare, port, true);
}

function bindOne(type: 'udp4' | 'udp6', host: string, port: number, ipv6Only: boolean): Promise<Socket> {
  const socket = createSocket({ type, ...(type === 'udp6' ? { ipv6Only } : {}) });
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      try {
        socket.close();
      } catch {
        // already closed by the failed bind
      }
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ port, address: host, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
