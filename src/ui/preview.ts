// A JPEG drawn in the terminal: decoded with jpeg-js (bounded resolution and memory), box-scaled
// to at most 64 columns, two pixel rows per text row with the upper half block '▀' (foreground =
// upper pixel, background = lower pixel), in 24-bit colour or the 256-colour palette.
import { readFile, stat } from 'node:fs/promises';
import jpeg from 'jpeg-js';
import { jpegFrame } from '../media/image-info';
import { colors } from './output';

export type ColorMode = 'truecolor' | '256';

export type PreviewResult = { ok: true; width: number; height: number; lines: string[] } | { ok: false; note: string };

/** Columns of the widest preview, whatever the terminal. */
export const MAX_PREVIEW_COLUMNS = 64;
/** Text lines of the tallest preview (two pixel rows each). */
export const MAX_PREVIEW_LINES = 32;
/** Images above this many megapixels are not decoded (a pure-JS decode would stall the peer). */
export const MAX_PREVIEW_MEGAPIXELS = 12.6; // 4096 x 3072; a 12 MP photo decodes in about 1.5 s here
const MAX_DECODE_MEMORY_MB = 256;
/** Files above this size are not read for a preview. */
export const MAX_PREVIEW_FILE_BYTES = 32 * 1024 * 1024;

const UPPER_HALF = '▀';
const RESET = '\x1b[0m';

/** 'truecolor' when COLORTERM says so, else '256'; null without a TTY, with NO_COLOR or TERM=dumb. */
export function previewMode(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): ColorMode | null {
  if (stream.isTTY !== true || 'NO_COLOR' in env || env.TERM === 'dumb') return null;
  const ct = (env.COLORTERM ?? '').toLowerCase();
  return ct === 'truecolor' || ct === '24bit' ? 'truecolor' : '256';
}

/**
 * width/height are the image's own dimensions; lines are the drawn rows (each ends with a reset),
 * at most maxColumns (<= 64) wide and maxRows (<= 32, default 32) high.
 * Never throws: anything undecodable gives { ok: false, note } with a one-line note.
 */
export function renderPreview(data: Uint8Array, o: { maxColumns: number; mode: ColorMode; maxRows?: number }): PreviewResult {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const unsupported = checkJpeg(b);
  if (unsupported) return { ok: false, note: `no preview: ${unsupported}` };
  let image: { width: number; height: number; data: Uint8Array };
  try {
    image = jpeg.decode(b, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: MAX_PREVIEW_MEGAPIXELS,
      maxMemoryUsageInMB: MAX_DECODE_MEMORY_MB,
    });
  } catch (err) {
    return { ok: false, note: `no preview: ${decodeFailure(err)}` };
  }
  if (image.width <= 0 || image.height <= 0 || image.data.length < image.width * image.height * 4) {
    return { ok: false, note: 'no preview: corrupt JPEG (no pixels decoded)' };
  }
  let columns = Math.max(1, Math.min(MAX_PREVIEW_COLUMNS, Math.floor(o.maxColumns) || 1, image.width));
  let pixelRows = Math.max(1, Math.round((image.height * columns) / image.width));
  // A tall picture is fitted to the line budget too, keeping its shape.
  const maxPixelRows = 2 * Math.max(1, Math.min(MAX_PREVIEW_LINES, Math.floor(o.maxRows ?? MAX_PREVIEW_LINES) || 1));
  if (pixelRows > maxPixelRows) {
    pixelRows = Math.min(maxPixelRows, image.height);
    columns = Math.max(1, Math.min(columns, Math.round((image.width * pixelRows) / image.height)));
  }
  const small = boxScale(image, columns, pixelRows);
  return { ok: true, width: image.width, height: image.height, lines: drawHalfBlocks(small, columns, pixelRows, o.mode) };
}

/** Writes the preview and a "W × H" line, or a one-line note; nothing when previewMode is null. */
export async function showPreview(path: string, stream: NodeJS.WriteStream): Promise<void> {
  const mode = previewMode(stream);
  if (!mode) return;
  const c = colors(stream);
  let result: PreviewResult;
  try {
    const st = await stat(path);
    if (st.size > MAX_PREVIEW_FILE_BYTES) {
      result = { ok: false, note: `no preview: file too large to preview (over ${MAX_PREVIEW_FILE_BYTES / 1024 / 1024} MiB)` };
    } else {
      const termColumns = typeof stream.columns === 'number' && stream.columns > 1 ? stream.columns - 1 : 80;
      // Leave room for the size line and the prompt on a short terminal.
      const termRows = typeof stream.rows === 'number' && stream.rows > 6 ? stream.rows - 3 : MAX_PREVIEW_LINES;
      result = renderPreview(await readFile(path), { maxColumns: Math.min(MAX_PREVIEW_COLUMNS, termColumns), maxRows: termRows, mode });
    }
  } catch (err) {
    result = { ok: false, note: `no preview: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  if (result.ok) {
    stream.write(`${result.lines.join('\n')}\n${c.dim(`${result.width} × ${result.height}`)}\n`);
  } else {
    stream.write(`${c.dim(result.note)}\n`);
  }
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
  if (frame.width * frame.height > MAX_PREVIEW_MEGAPIXELS * 1e6) {
    return `image too large to preview (${frame.width} × ${frame.height}, over ${MAX_PREVIEW_MEGAPIXELS} megapixels)`;
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

/** Rows of '▀' cells; an odd last pixel row keeps the terminal's own background below it. */
export function drawHalfBlocks(rgb: Uint8Array, cols: number, rows: number, mode: ColorMode): string[] {
  const lines: string[] = [];
  const px = (x: number, y: number): [number, number, number] => {
    const i = (y * cols + x) * 3;
    return [rgb[i]!, rgb[i + 1]!, rgb[i + 2]!];
  };
  for (let y = 0; y < rows; y += 2) {
    let line = '';
    for (let x = 0; x < cols; x++) {
      const fg = sgr(38, px(x, y), mode);
      line += y + 1 < rows ? `\x1b[${fg};${sgr(48, px(x, y + 1), mode)}m${UPPER_HALF}` : `\x1b[${fg}m${UPPER_HALF}`;
    }
    lines.push(line + RESET);
  }
  return lines;
}

function sgr(base: 38 | 48, [r, g, b]: [number, number, number], mode: ColorMode): string {
  return mode === 'truecolor' ? `${base};2;${r};${g};${b}` : `${base};5;${to256(r, g, b)}`;
}

const CUBE_LEVELS = [0, 95, 135, 175, 215, 255];

/** The nearest xterm-256 colour: the 6×6×6 cube (16–231) or the grey ramp (232–255). */
export function to256(r: number, g: number, b: number): number {
  const ri = nearestLevel(r);
  const gi = nearestLevel(g);
  const bi = nearestLevel(b);
  const cube = 16 + 36 * ri + 6 * gi + bi;
  const cubeError = dist2(r, g, b, CUBE_LEVELS[ri]!, CUBE_LEVELS[gi]!, CUBE_LEVELS[bi]!);
  const greyIndex = Math.max(0, Math.min(23, Math.round(((r + g + b) / 3 - 8) / 10)));
  const grey = 8 + 10 * greyIndex;
  return dist2(r, g, b, grey, grey, grey) < cubeError ? 232 + greyIndex : cube;
}

function nearestLevel(v: number): number {
  let best = 0;
  for (let i = 1; i < CUBE_LEVELS.length; i++) {
    if (Math.abs(CUBE_LEVELS[i]! - v) < Math.abs(CUBE_LEVELS[best]! - v)) best = i;
  }
  return best;
}

function dist2(r1: number, g1: number, b1: number, r2: number, g2: number, b2: number): number {
  return (r1 - r2) ** 2 + (g1 - g2) ** 2 + (b1 - b2) ** 2;
}
