// Name and address rules of SPEC section 3, as pure functions.
import { isIP } from 'node:net';

export const NAME_MAX = 32;
const NAME_RE = /^[A-Za-z0-9._-]{1,32}$/;

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name);
}

/** The store key of a name: names are unique case-insensitively. */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/** A prefix filter is a name fragment (possibly empty). */
export function isValidPrefix(prefix: string): boolean {
  return prefix === '' || /^[A-Za-z0-9._-]{1,32}$/.test(prefix);
}

/** `::ffff:1.2.3.4` -> `1.2.3.4`; other addresses unchanged. */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

export function isValidIp(ip: unknown): ip is string {
  return typeof ip === 'string' && ip.length <= 45 && isIP(ip) !== 0;
}

export function isLoopback(ip: string): boolean {
  const v = normalizeIp(ip);
  if (isIP(v) === 4) return v.startsWith('127.');
  return v === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(v);
}

/** 0.0.0.0 and :: say "any address": never a place to reach a peer. */
export function isUnspecified(ip: string): boolean {
  const v = normalizeIp(ip);
  return v === '0.0.0.0' || v === '::' || /^(0{1,4}:){7}0{1,4}$/.test(v);
}
