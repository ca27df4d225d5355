// Image dimensions from the first bytes of a file (JPEG SOF, PNG IHDR, GIF, BMP, WebP),
// without decoding pixels. Pure parsing that never throws; null when unknown or malformed.
import { open } from 'node:fs/promises';

export interface ImageSize {
  width: number;
  height: number;
}

/** How much of a file imageSizeOfFile reads at most. */
export const MAX_HEADER_BYTES = 64 * 1024;

export function imageSize(header: Uint8Array): ImageSize | null {
  try {
    const b = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
    if (b.length >= 2 && b[0] === 0xff && b[1] === 0xd8) return jpegSize(b);
    if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return pngSize(b);
    if (b.length >= 10 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a')) {
      return sized(b.readUInt16LE(6), b.readUInt16LE(8));
    }
    if (b.length >= 26 && b[0] === 0x42 && b[1] === 0x4d) return bmpSize(b);
    if (b.length >= 30 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return webpSize(b);
    return null;
  } catch {
    return null; // a read past the end of a truncated header: unknown, never an exception
  }
}

/** Reads at most MAX_HEADER_BYTES of the file (plus a few bytes per JPEG segment header beyond it). */
export async function imageSizeOfFile(path: string): Promise<ImageSize | null> {
  let fh;
  try {
    fh = await open(path, 'r');
    const buf = Buffer.alloc(MAX_HEADER_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const head = buf.subarray(0, bytesRead);
    const found = imageSize(head);
    if (found || bytesRead < MAX_HEADER_BYTES || head[0] !== 0xff || head[1] !== 0xd8) return found;
    // A JPEG whose SOF lies past a large EXIF/ICC segment: hop from segment header to segment header.
    return await jpegSizeBySeeking(fh, 2);
  } catch {
    return null;
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** SOFn markers that carry frame dimensions: C0-CF except DHT (C4), JPG (C8) and DAC (CC). */
export function isSofMarker(m: number): boolean {
  return m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
}

/** Markers without a length field: TEM, RST0-7 (SOI/EOI are handled by the walkers). */
function isStandalone(m: number): boolean {
  return m === 0x01 || (m >= 0xd0 && m <= 0xd7);
}

export interface JpegFrame extends ImageSize {
  /** The SOF marker byte: 0xc0 baseline, 0xc1 extended, 0xc2 progressive, ... */
  sof: number;
  components: number;
  /** Offset of the first SOS marker, when reached while walking. */
  scanOffset: number;
}

/** Walks JPEG segments up to the frame header; also reports where the first scan starts. */
export function jpegFrame(b: Buffer): JpegFrame | null {
  let frame: Omit<JpegFrame, 'scanOffset'> | null = null;
  let pos = 2;
  while (pos + 4 <= b.length) {
    if (b[pos] !== 0xff) return frame ? { ...frame, scanOffset: -1 } : null;
    const m = b[pos + 1]!;
    if (m === 0xff) {
      pos++; // fill byte
      continue;
    }
    if (isStandalone(m)) {
      pos += 2;
      continue;
    }
    if (m === 0xd8 || m === 0xd9) return null; // SOI again or EOI before a scan
    const len = b.readUInt16BE(pos + 2);
    if (len < 2) return null;
    if (m === 0xda) return frame ? { ...frame, scanOffset: pos } : null;
    if (isSofMarker(m) && !frame) {
      if (pos + 10 > b.length) return null;
      const height = b.readUInt16BE(pos + 5);
      const width = b.readUInt16BE(pos + 7);
      const size = sized(width, height);
      if (!size) return null; // height 0 (set later by DNL) counts as unknown
      frame = { ...size, sof: m, components: b[pos + 9]! };
    }
    pos += 2 + len;
  }
  return frame ? { ...frame, scanOffset: -1 } : null;
}

function jpegSize(b: Buffer): ImageSize | null {
  const f = jpegFrame(b);
  return f ? { width: f.width, height: f.height } : null;
}

/** Bounded: at most 4096 segment headers of 10 bytes each. */
async function jpegSizeBySeeking(fh: import('node:fs/promises').FileHandle, start: number): Promise<ImageSize | null> {
  const seg = Buffer.alloc(10);
  let pos = start;
  for (let hops = 0; hops < 4096; hops++) {
    const { bytesRead } = await fh.read(seg, 0, seg.length, pos);
    if (bytesRead < 4 || seg[0] !== 0xff) return null;
    const m = seg[1]!;
    if (m === 0xff) {
      pos++;
      continue;
    }
    if (isStandalone(m)) {
      pos += 2;
      continue;
    }
    if (m === 0xd8 || m === 0xd9 || m === 0xda) return null;
    const len = seg.readUInt16BE(2);
    if (len < 2) return null;
    if (isSofMarker(m)) return bytesRead >= 9 ? sized(seg.readUInt16BE(7), seg.readUInt16BE(5)) : null;
    pos += 2 + len;
  }
  return null;
}

function pngSize(b: Buffer): ImageSize | null {
  if (b.toString('latin1', 12, 16) !== 'IHDR') return null;
  const width = b.readUInt32BE(16);
  const height = b.readUInt32BE(20);
  return width > 0x7fffffff || height > 0x7fffffff ? null : sized(width, height);
}

function bmpSize(b: Buffer): ImageSize | null {
  const dib = b.readUInt32LE(14);
  if (dib === 12) return sized(b.readUInt16LE(18), b.readUInt16LE(20)); // OS/2 BITMAPCOREHEADER
  if (dib < 40 || dib > 256) return null;
  // Negative height means a top-down bitmap; the size is its magnitude.
  return sized(Math.abs(b.readInt32LE(18)), Math.abs(b.readInt32LE(22)));
}

function webpSize(b: Buffer): ImageSize | null {
  const chunk = b.toString('latin1', 12, 16);
  if (chunk === 'VP8 ') {
    // Lossy: a 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and height.
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return null;
    return sized(b.readUInt16LE(26) & 0x3fff, b.readUInt16LE(28) & 0x3fff);
  }
  if (chunk === 'VP8L') {
    // Lossless: signature 0x2f, then width-1 and height-1 as 14-bit little-endian bit fields.
    if (b[20] !== 0x2f) return null;
    const bits = b.readUInt32LE(21);
    return sized((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
  }
  if (chunk === 'VP8X') {
    // Extended: 24-bit canvas width-1 and height-1.
    return sized(b.readUIntLE(24, 3) + 1, b.readUIntLE(27, 3) + 1);
  }
  return null;
}

function sized(width: number, height: number): ImageSize | null {
  return Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0 ? { width, height } : null;
}
