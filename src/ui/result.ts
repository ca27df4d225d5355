// The one line that replaces a transfer's progress bar: where it was saved, how big, how fast,
// and that the SHA-256 matched. Shared by `get` and (if it likes) the interactive loop.
import { formatBytes, formatDuration, formatRate } from './format';
import type { colors } from './output';
import { printable } from './text';

export interface FetchSummary {
  path: string;
  size: number;
  via: string;
  /** How the peer was reached; only a path other than 'direct' is worth words. */
  route?: 'direct' | 'punched' | 'relayed';
  seconds: number;
  /** Bytes that crossed the wire (less than size after a resume). */
  bytesTransferred?: number;
  resumedFrom?: number;
}

/**
 * "✓ saved downloads/a.jpg  42.4 KiB in 0.3 s (141 KiB/s over udp), SHA-256 verified"; a peer
 * reached through its NAT or the relay adds ", punched through NAT" or ", relayed by the registry".
 */
export function fetchSummaryLine(r: FetchSummary, c?: ReturnType<typeof colors>): string {
  const moved = r.bytesTransferred ?? r.size;
  const rate = r.seconds > 0 ? formatRate(moved / r.seconds) : '';
  const path = r.route === 'punched' ? ', punched through NAT' : r.route === 'relayed' ? ", relayed by the registry" : '';
  const how = [rate, `over ${r.via}${path}`].filter(Boolean).join(' ');
  const resumed = r.resumedFrom ? `, resumed at ${formatBytes(r.resumedFrom)}` : '';
  const tick = c ? c.green('✓') : '✓';
  const verified = c ? c.green('SHA-256 verified') : 'SHA-256 verified';
  return `${tick} saved ${printable(r.path)}  ${formatBytes(r.size)} in ${formatDuration(r.seconds)} (${how}${resumed}), ${verified}`;
}

export interface SetSummary {
  fetched: number;
  present: number;
  failed: number;
  /** Bytes of the files fetched, and how many of them crossed the wire. */
  bytes: number;
  bytesTransferred: number;
  seconds: number;
  downloads: string;
  route?: FetchSummary['route'];
}

/**
 * "✓ 998 files (1.2 GiB) saved under downloads in 12 s (98 MiB/s), 2 already there, SHA-256
 * verified"; with failures, a cross and how many failed instead of the tick.
 */
export function setSummaryLine(s: SetSummary, c?: ReturnType<typeof colors>): string {
  const rate = s.seconds > 0 && s.bytesTransferred > 0 ? ` (${formatRate(s.bytesTransferred / s.seconds)}${s.route === 'punched' ? ', punched through NAT' : s.route === 'relayed' ? ', relayed by the registry' : ''})` : '';
  const files = (n: number) => `${n} ${n === 1 ? 'file' : 'files'}`;
  const parts = [`${files(s.fetched)} (${formatBytes(s.bytes)}) saved under ${printable(s.downloads)} in ${formatDuration(s.seconds)}${rate}`];
  if (s.present > 0) parts.push(`${s.present} already there`);
  if (s.failed > 0) parts.push(`${s.failed} failed`);
  const mark = s.failed > 0 ? (c ? c.red('✗') : '✗') : c ? c.green('✓') : '✓';
  const verified = c ? c.green('SHA-256 verified') : 'SHA-256 verified';
  return `${mark} ${parts.join(', ')}, ${verified}`;
}
