// Human-readable sizes, rates and durations for progress bars and result lines.
// Binary units (KiB = 1024 B); never throws, whatever number it is given.
import { formatBytes } from '../core/bytes';

export { formatBytes };

/** "12.3 MiB/s"; 0 B/s for anything not a finite positive number. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** "17 ms", "0.4 s", "42.0 s", "1 m 05 s", "2 h 03 m"; "--" when unknown (not finite). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 0) seconds = 0;
  if (seconds < 0.095) return `${Math.round(seconds * 1000)} ms`; // "0.0 s" would say nothing
  if (seconds < 59.95) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)} m ${pad2(whole % 60)} s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${pad2(minutes % 60)} m`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
