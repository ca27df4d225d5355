// A JPEG decoded with jpeg-js (bounded resolution and memory) and box-scaled to a few dozen
// pixels: what the terminal preview draws (README "Limits of a peer"). Pure and synchronous; it
// takes up to ~1.5 s at the size cap, so the CLI runs it in a worker (jpeg-worker.ts).
import type * as JpegJs from 'jpeg-js';
import { jpegFrame } from './image-info';

let jpegJs: typeof JpegJs | undefined;
/** jpeg-js on first use: a command that only might show a picture does not load it at start. */
function decoder(): typeof JpegJs {
  jpegJs ??= require('jpeg-js') as typeof JpegJs; // a lazy require() stays lazy in the bundle
  return jpegJs;
}

/** Images above this many megapixels are not decoded. */
export const MAX_THUMBNAIL_MEGAPIXELS = 12.6; // 4096 x 3072; a 12 MP photo decodes in about 1.5 s here
/** jpeg-js's own cap on what it allocates for one decode. */
export const MAX_DECODE_MEMORY_MB = 256;

export interface ThumbnailSize {
  /** At most this many pixel columns. */
  maxColumns: number;
  /** At most this many pixel rows (the shape is kept: a tall picture is narrowed to fit). */
  maxRows: number;
}

export type ThumbnailResult =
  | { ok: true; width: number; height: number; columns: number; rows: number; rgb: Uint8Array }
  | { ok: false; note: string };

/**
 * width/height are the image's own dimensions; rgb is columns x rows pixels, 3 bytes each.
 * Never throws: anything undecodable gives { ok: false, note } with a one-line note.
 */
export function jpegThumbnail(data: Uint8Array, size: ThumbnailSize): ThumbnailResult {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const unsupported = checkJpeg(b);
  if (unsupported) return { ok: false, note: `no preview: ${unsupported}` };
  let image: { width: number; height: number; data: Uint8Array };
  try {
    image = decoder().decode(b, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: MAX_THUMBNAIL_MEGAPIXELS,
      maxMemoryUsageInMB: MAX_DECODE_MEMORY_MB,
    });
  } catch (err) {
    return { ok: false, note: `no preview: ${decodeFailure(err)}` };
  }
  if (image.width <= 0 || image.height <= 0 || image.data.length < image.width * image.height * 4) {
    return { ok: false, note: 'no preview: corrupt JPEG (no pixels decoded)' };
  }
  let columns = Math.max(1, Math.min(Math.floor(size.maxColumns) || 1, image.width));
  let rows = Math.max(1, Math.round((image.height * columns) / image.width));
  const maxRows = Math.max(1, Math.floor(size.maxRows) || 1);
  if (rows > maxRows) {
    rows = Math.min(maxRows, image.height);
    columns = Math.max(1, Math.min(columns, Math.round((image.width * rows) / image.height)));
  }
  return { ok: true, width: image.width, height: image.height, columns, rows, rgb: boxScale(image, columns, rows) };
}

/** What jpeg-js cannot or should not decode, found from the markers before decoding; else null. */
function checkJpeg(b: Buffer): string | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return 'not a JPEG file';
  const frame = jpegFrame(b);
  if (!frame) return 'corrupt or truncated JPEG (no frame header)';
  const sof = frame.sof;
  if (sof === 0xc3 || sof === 0xc7 || sof === 0xcb || sof === 0xcf) return 'lossless JPEG is not supported';
  if (sof >= 0xc9) return 'arithmetic-coded JPEG is not supported';
  if (sof >= 0xc5) return 'hierarchical JPEG is not supported';
  if (![1, 3, 4].includes(frame.components)) return `JPEG with ${frame.components} colour components is not supported`;
  if (frame.width * frame.height > MAX_THUMBNAIL_MEGAPIXELS * 1e6) {
    return `image too large to preview (${frame.width} × ${frame.height}, over ${MAX_THUMBNAIL_MEGAPIXELS} megapixels)`;
  }
  if (frame.scanOffset < 0) return 'corrupt or truncated JPEG (no image data)';
  // Entropy-coded data never contains FF D9 (FF is stuffed as FF 00): a missing end marker
  // after the first scan means the file was cut short.
  if (b.lastIndexOf(EOI) < frame.scanOffset) return 'truncated JPEG (end marker missing)';
  return null;
}

const EOI = Buffer.from([0xff, 0xd9]);

function decodeFailure(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/4 components/.test(msg)) return 'CMYK JPEG without an Adobe colour marker is not supported';
  if (/maxResolutionInMP|maxMemoryUsageInMB|allocate/i.test(msg)) return 'image too large to preview';
  const line = msg.split('\n')[0]!.slice(0, 120);
  return `corrupt JPEG (${line})`;
}

/** Box filter: each target pixel is the mean of the source pixels its rectangle covers. */
export function boxScale(src: { width: number; height: number; data: Uint8Array }, cols: number, rows: number): Uint8Array {
  const out = new Uint8Array(cols * rows * 3);
  const xs = spans(src.width, cols);
  const ys = spans(src.height, rows);
  const sums = new Float64Array(cols * 3);
  for (let ty = 0; ty < rows; ty++) {
    sums.fill(0);
    const [y0, y1] = ys[ty]!;
    for (let y = y0; y < y1; y++) {
      const rowBase = y * src.width * 4;
      for (let tx = 0; tx < cols; tx++) {
        const [x0, x1] = xs[tx]!;
        let r = 0;
        let g = 0;
        let bl = 0;
        for (let x = x0; x < x1; x++) {
          const i = rowBase + x * 4;
          r += src.data[i]!;
          g += src.data[i + 1]!;
          bl += src.data[i + 2]!;
        }
        sums[tx * 3] += r;
        sums[tx * 3 + 1] += g;
        sums[tx * 3 + 2] += bl;
      }
    }
    for (let tx = 0; tx < cols; tx++) {
      const [x0, x1] = xs[tx]!;
      const n = (x1 - x0) * (y1 - y0);
      const o = (ty * cols + tx) * 3;
      out[o] = Math.round(sums[tx * 3]! / n);
      out[o + 1] = Math.round(sums[tx * 3 + 1]! / n);
      out[o + 2] = Math.round(sums[tx * 3 + 2]! / n);
    }
  }
  return out;
}

/** Splits 0..size into `parts` contiguous non-empty ranges (parts <= size). */
function spans(size: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < parts; i++) {
    const start = Math.floor((i * size) / parts);
    const end = Math.max(start + 1, Math.floor(((i + 1) * size) / parts));
    out.push([start, Math.min(size, end)]);
  }
  return out;
}
