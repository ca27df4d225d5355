// Which addresses a registration may name (README.md, "Registered addresses"), and which source
// addresses count as one client for the per-client limits. Pure functions.
//
// A peer may be reached at the address its request came from, or at an address of its own LAN (a
// host candidate). Any other public address would be somebody else's: the registry would aim
// requesters at a victim (a DNS server, a cloud metadata service), so it is refused.
import { isIP } from 'node:net';
import { classifyAddress, isLoopback, normalizeIp } from '../core/addresses';

/**
 * What becomes of one claimed address (already normalized) of a client seen at `observed`:
 * - the observed address itself, or a private (LAN) address: kept;
 * - unspecified (0.0.0.0, ::), or loopback claimed by a non-loopback client: replaced by the
 *   observed address (it would only point other peers at themselves; peers that take their
 *   address from their host name often get 127.0.1.1);
 * - loopback claimed by a loopback client: kept (everything is on one machine);
 * - anything else (link-local, multicast, reserved, another public address): refused, with why.
 */
export function judgeClaim(claim: string, observed: string): { ok: true; address: string } | { ok: false; message: string } {
  if (claim === observed) return { ok: true, address: claim };
  const cls = classifyAddress(claim);
  switch (cls) {
    case 'private':
      return { ok: true, address: claim };
    case 'unspecified':
      return { ok: true, address: observed };
    case 'loopback':
      return { ok: true, address: isLoopback(observed) ? claim : observed };
    case 'link_local':
      return { ok: false, message: `${claim} is a link-local address (169.254.0.0/16, fe80::/10): it names no host beyond one link; register a LAN address or none` };
    case 'special':
      return { ok: false, message: `${claim} is not a unicast host address` };
    case 'public':
      return {
        ok: false,
        message: `${claim} is neither the address this request came from (${observed}) nor a private (LAN) address; a registration may only name its own address`,
      };
  }
}

/**
 * The key under which a source address is limited: an IPv4 address as it is, an IPv6 address by
 * its /64 (one subscriber or one LAN gets a whole /64, so a single host can use any of it).
 */
export function clientKey(address: string): string {
  const ip = normalizeIp(address);
  if (isIP(ip) !== 6) return ip;
  const groups = expandIpv6(ip).slice(0, 4).map((g) => g.replace(/^0+(?=.)/, ''));
  return `${groups.join(':')}::/64`;
}

/** The eight groups of a canonical (compressed) IPv6 address. */
function expandIpv6(ip: string): string[] {
  const [head, tail] = ip.includes('::') ? ip.split('::') as [string, string] : [ip, undefined];
  const left = head ? head.split(':') : [];
  if (tail === undefined) return left;
  const right = tail ? tail.split(':') : [];
  return [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
}
