// STAND-IN for the UI primitives (CONTRACTS "UI primitives"): removed once src/ui/* lands.
import { readFile } from 'node:fs/promises';
import jpeg from 'jpeg-js';
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(1)} ${u[i]}`;
}
export function formatRate(b: number): string { return `${formatBytes(Math.round(b))}/s`; }
export function formatDuration(s: number): string { return `${s.toFixed(1)} s`; }
export interface Progress { update(bytesDone: number): void; finish(): void }
export function createProgress(o: { stream: NodeJS.WriteStream; label: string; total: number; disabled?: boolean }): Progress {
  const on = !o.disabled && o.stream.isTTY === true && !process.env.CI;
  return {
    update(n) { if (on) o.stream.write(`\r\x1b[2K${o.label} ${formatBytes(n)} / ${formatBytes(o.total)}`); },
    finish() { if (on) o.stream.write('\r\x1b[2K'); },
  };
}
export async function showPreview(_path: string, _stream: NodeJS.WriteStream): Promise<void> {}
export async function imageSizeOfFile(_path: string): Promise<{ width: number; height: number } | null> {
  try { const j = jpeg.decode(await readFile(_path)); return { width: j.width, height: j.height }; } catch { return null; }
}
export function sampleText(): string { return 'Hello from p2pshare!\n'.repeat(200); }
export function sampleJpeg(width = 64, height = 48): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const i = (y * width + x) * 4; data[i] = (x * 255) / width; data[i + 1] = (y * 255) / height; data[i + 2] = 128; data[i + 3] = 255;
  }
  return jpeg.encode({ data, width, height }, 85).data;
}
