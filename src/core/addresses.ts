// IP address rules shared by the registry (what it records) and the peers (which of their
// addresses are LAN candidates): one canonical spelling, and the class of an address.
import { BlockList, isIP, SocketAddress } from 'node:net';
import { networkInterfaces } from 'node:os';

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
function list(v4: Array<[string, number]>, v6: Array<[string, number]>): BlockList {
  const b = new BlockList();
  for (const [net, bits] of v4) b.addSubnet(net, bits, 'ipv4');
  for (const [net, bits] of v6) b.addSubnet(net, bits, 'ipv6');
  return b;
}

const LOOPBACK = list([['127.0.0.0', 8]], [['::1', 128]]);
/** 0.0.0.0 and :: say "any address": never a place to reach a peer. */
const UNSPECIFIED = list([['0.0.0.0', 32]], [['::', 128]]);
/** A LAN: RFC 1918, the carrier-grade NAT range of RFC 6598, IPv6 unique local (RFC 4193). */
const PRIVATE = list([['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10]], [['fc00::', 7]]);
/** One link only (RFC 3927, RFC 4291), and 169.254.169.254 is the cloud metadata service. */
const LINK_LOCAL = list([['169.254.0.0', 16]], [['fe80::', 10]]);
/** Never a unicast host: "this network", multicast, reserved, broadcast; IPv6 multicast and the old site-local range. */
const SPECIAL = list([['0.0.0.0', 8], ['224.0.0.0', 4], ['240.0.0.0', 4]], [['ff00::', 8], ['fec0::', 10]]);

function inList(b: BlockList, ip: string): boolean {
  const family = isIP(ip);
  return family !== 0 && b.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

export type AddressClass = 'unspecified' | 'loopback' | 'private' | 'link_local' | 'special' | 'public';

/** The class of a valid IP address (any spelling; IPv4-mapped IPv6 is judged as IPv4). */
export function classifyAddress(address: string): AddressClass {
  const ip = normalizeIp(address);
  if (isUnspecified(ip)) return 'unspecified';
  if (isLoopback(ip)) return 'loopback';
  if (inList(PRIVATE, ip)) return 'private';
  if (inList(LINK_LOCAL, ip)) return 'link_local';
  if (inList(SPECIAL, ip)) return 'special';
  return 'public';
}

export function isLoopback(ip: string): boolean {
  return inList(LOOPBACK, ip);
}

export function isUnspecified(ip: string): boolean {
  return inList(UNSPECIFIED, ip);
}

let localAddresses: { at: number; set: Set<string> } | undefined;

/**
 * Whether `ip` is this host's: loopback, or an address of one of its interfaces (the kernel then
 * delivers through loopback, without a network path's MTU). The interface list is read at most
 * once every 10 s.
 */
export function isLocalAddress(ip: string): boolean {
  const address = normalizeIp(ip);
  if (isLoopback(address)) return true;
  const now = performance.now();
  if (!localAddresses || now - localAddresses.at > 10_000) {
    const set = new Set<string>();
    for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) set.add(normalizeIp(i.address));
    localAddresses = { at: now, set };
  }
  return localAddresses.set.has(address);
}

/**
 * This host's private (LAN) IPv4 addresses: its host candidates, where a peer on the same network
 * reaches it without the NAT (which may not hairpin). Read from the interfaces each time.
 */
export function privateAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (i.family === 'IPv4' && !i.internal && classifyAddress(i.address) === 'private') out.push(i.address);
  }
  return out;
}
