// The largest UDP datagram our own kernel sends towards an address without fragmenting it at the
// first hop (PROTOCOL.md 6.10). Node cannot set the IP "don't fragment" bit: under Linux's default
// for UDP sockets (IP_PMTUDISC_WANT) a datagram larger than the outgoing interface's MTU is
// fragmented by the sender's kernel, silently, and arrives whole. A path MTU probe must therefore
// never be larger than the first hop carries, or it would pass on fragments. Linux only: the
// route (/proc/net/route, longest prefix) names the interface, /sys/class/net/IF/mtu its MTU.
// Elsewhere, or when the files cannot be read, a network path is assumed to be Ethernet's (1472).
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { isLocalAddress } from '../core/addresses';
import { LOCAL_MAX_DATAGRAM_BYTES, MAX_DATAGRAM_BYTES } from '../wire/frame';

/** IPv4 (20) and UDP (8) headers: a datagram of MTU - 28 bytes fills one IP packet. */
export const IPV4_UDP_HEADER_BYTES = 28;
/** Answers are kept this long: a probe search asks a few dozen times within a second or two. */
const CACHE_MS = 5_000;
const CACHE_ENTRIES = 256;

const cache = new Map<string, { limit: number; until: number }>();

/** The first-hop limit for `address`: the largest datagram (16,384 within this host, 1472 when no interface MTU is known). */
export function firstHopDatagramLimit(address: string): number {
  if (isLocalAddress(address)) return LOCAL_MAX_DATAGRAM_BYTES;
  const now = performance.now();
  const hit = cache.get(address);
  if (hit && hit.until > now) return hit.limit;
  const mtu = isIPv4(address) ? interfaceMtu(routeInterface(readText('/proc/net/route'), address)) : undefined;
  const limit = mtu === undefined ? MAX_DATAGRAM_BYTES : Math.min(LOCAL_MAX_DATAGRAM_BYTES, Math.max(0, mtu - IPV4_UDP_HEADER_BYTES));
  if (cache.size >= CACHE_ENTRIES) cache.clear();
  cache.set(address, { limit, until: now + CACHE_MS });
  return limit;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function interfaceMtu(iface: string | undefined): number | undefined {
  if (iface === undefined || !/^[\w.@:-]+$/.test(iface)) return undefined;
  const mtu = Number(readText(`/sys/class/net/${iface}/mtu`)?.trim());
  return Number.isInteger(mtu) && mtu >= 68 ? mtu : undefined;
}

/**
 * The interface of the most specific route to `address` in a /proc/net/route table (addresses and
 * masks in hex, in the host's byte order: little-endian on the machines Node runs on), or undefined.
 */
export function routeInterface(table: string | undefined, address: string): string | undefined {
  if (table === undefined) return undefined;
  const ip = address.split('.').reduce((n, octet, i) => n + Number(octet) * 2 ** (8 * i), 0); // little-endian
  let best: { iface: string; bits: number; metric: number } | undefined;
  for (const line of table.split('\n').slice(1)) {
    const [iface, dest, , flags, , , metric, mask] = line.trim().split(/\s+/);
    if (iface === undefined || mask === undefined || (parseInt(flags!, 16) & 1) === 0) continue; // RTF_UP
    const m = parseInt(mask, 16) >>> 0;
    if (((ip & m) >>> 0) !== (parseInt(dest!, 16) >>> 0)) continue;
    const bits = popcount(m);
    const rank = Number(metric);
    if (!best || bits > best.bits || (bits === best.bits && rank < best.metric)) best = { iface, bits, metric: rank };
  }
  return best?.iface;
}

function popcount(n: number): number {
  let c = 0;
  for (let v = n >>> 0; v !== 0; v >>>= 1) c += v & 1;
  return c;
}
