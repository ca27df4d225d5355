// IP address rules shared by the registry (what it records) and the peers (whom a TCP ticket is
// for): one canonical spelling, and which addresses can never be a place to reach a peer.
import { BlockList, isIP, SocketAddress } from 'node:net';

/**
 * The canonical spelling of an address: IPv6 compressed and lower-case, IPv4-mapped IPv6 in any
 * spelling (`::ffff:1.2.3.4`, `::ffff:102:304`) as plain dotted IPv4. Non-addresses unchanged.
 */
export function normalizeIp(ip: string): string {
  const family = isIP(ip);
  if (family !== 6) return ip;
  const canonical = new SocketAddress({ address: ip, family: 'ipv6' }).address;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(canonical);
  return m ? m[1]! : canonical;
}

export function isValidIp(ip: unknown): ip is string {
  return typeof ip === 'string' && ip.length <= 45 && isIP(ip) !== 0;
}

// BlockList compares addresses, not strings: '::0:1' is '::1', and an IPv4-mapped address is
// judged by the IPv4 rules.
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
/** 0.0.0.0 and :: say "any address": never a place to reach a peer. */
const UNSPECIFIED = new BlockList();
UNSPECIFIED.addAddress('0.0.0.0', 'ipv4');
UNSPECIFIED.addAddress('::', 'ipv6');

function inList(list: BlockList, ip: string): boolean {
  const family = isIP(ip);
  return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

export function isLoopback(ip: string): boolean {
  return inList(LOOPBACK, ip);
}

export function isUnspecified(ip: string): boolean {
  return inList(UNSPECIFIED, ip);
}
