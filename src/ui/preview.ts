// A JPEG drawn in the terminal: decoded and box-scaled to at most 64 columns by
// media/jpeg-thumbnail.ts (in a worker thread, so the peer keeps serving meanwhile), then two pixel
// rows per text row with the upper half block '▀' (foreground = upper pixel, background = lower
// pixel), in 24-bit colour or the 256-colour palette.
import { readFile, stat } from 'node:fs/promises';
import { jpegThumbnail, MAX_THUMBNAIL_MEGAPIXELS, type ThumbnailResult, type ThumbnailSize } from '../media/jpeg-thumbnail';
import { jpegThumbnailInWorker } from '../media/thumbnail-worker';
import { colors } from './output';

export type ColorMode = 'truecolor' | '256';

export type PreviewResult = { ok: true; width: number; height: number; lines: string[] } | { ok: false; note: string };

/** Columns of the widest preview, whatever the terminal. */
export const MAX_PREVIEW_COLUMNS = 64;
/** Text lines of the tallest preview (two pixel rows each). */
export const MAX_PREVIEW_LINES = 32;
/** Images above this many megapixels are not decoded. */
export const MAX_PREVIEW_MEGAPIXELS = MAX_THUMBNAIL_MEGAPIXELS;
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
 * Decodes in this thread; showPreview decodes in a worker.
 */
export function renderPreview(data: Uint8Array, o: { maxColumns: number; mode: ColorMode; maxRows?: number }): PreviewResult {
  return drawn(jpegThumbnail(data, thumbnailSize(o.maxColumns, o.maxRows)), o.mode);
}

/** Pixel budget of a preview: at most 64 columns, and two pixel rows per allowed text line. */
function thumbnailSize(maxColumns: number, maxRows = MAX_PREVIEW_LINES): ThumbnailSize {
  return {
    maxColumns: Math.max(1, Math.min(MAX_PREVIEW_COLUMNS, Math.floor(maxColumns) || 1)),
    maxRows: 2 * Math.max(1, Math.min(MAX_PREVIEW_LINES, Math.floor(maxRows) || 1)),
  };
}

function drawn(t: ThumbnailResult, mode: ColorMode): PreviewResult {
  if (!t.ok) return t;
  return { ok: true, width: t.width, height: t.height, lines: drawHalfBlocks(t.rgb, t.columns, t.rows, mode) };
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
      const thumbnail = await jpegThumbnailInWorker(await readFile(path), thumbnailSize(termColumns, termRows));
      result = drawn(thumbnail, mode);
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
