// Sizes as people read them, for messages of every layer (ui/format.ts adds rates and durations).
// Binary units (KiB = 1024 B); never throws, whatever number it is given.

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** "512 B", "1.5 MiB", "256 MiB": one decimal below 100 of a unit, none above. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) n = 0;
  if (n < 1024) return `${Math.round(n)} B`;
  let v = n / 1024;
  let i = 0;
  // Step up while the rounded figure would read 1024 or more ("1024.0 KiB" -> "1.0 MiB").
  while (i < UNITS.length - 1 && Number(v.toFixed(v < 100 ? 1 : 0)) >= 1024) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 99.95 ? 1 : 0)} ${UNITS[i]}`;
}
