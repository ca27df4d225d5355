// One redrawn progress line on a terminal stream (stderr): label, bar, bytes done / total,
// percentage, rate and ETA. Silent unless the stream is a TTY, not under CI and not disabled
// (--json). Redraws at most every REDRAW_MS; finish() erases the line for the caller's result.
import { colors } from './output';
import { formatBytes, formatDuration, formatRate } from './format';
import { displayWidth, printable, truncateToWidth } from './text';

export interface Progress {
  update(bytesDone: number): void;
  /** Shows another label from the next redraw (a set's "12/40 files"). */
  setLabel(label: string): void;
  /** Erases the bar line (idempotent); later updates are ignored. */
  finish(): void;
}

export interface ProgressOptions {
  stream: NodeJS.WriteStream;
  label: string;
  total: number;
  disabled?: boolean;
  /** Clock in milliseconds (tests); defaults to performance.now. */
  now?: () => number;
}

export const REDRAW_MS = 100;
/** The rate is measured over roughly this much recent history. */
const RATE_WINDOW_MS = 3000;
const ERASE_LINE = '\r\x1b[2K';
const MIN_BAR_CELLS = 10;
const MAX_BAR_CELLS = 30;
/** A label is shortened to no fewer than this many characters before the ETA and rate go. */
const MIN_LABEL = 16;
/** The widest formatBytes result, e.g. '99.9 MiB'. */
const BYTES_WIDTH = 8;

/** Progress bars only on a terminal and never under CI (README "Command reference"), per stream. */
export function progressAllowed(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.CI && env.TERM !== 'dumb';
}

const silent: Progress = { update() {}, setLabel() {}, finish() {} };

export function createProgress(o: ProgressOptions): Progress {
  if (o.disabled || !progressAllowed(o.stream)) return silent;
  const now = o.now ?? (() => performance.now());
  const total = Number.isFinite(o.total) && o.total > 0 ? o.total : 0;
  const c = colors(o.stream);
  const samples: { t: number; bytes: number }[] = [];
  let done = 0;
  let label = o.label;
  let lastDraw = -Infinity;
  let drawn = false;
  let finished = false;
  let pending: NodeJS.Timeout | undefined;

  const draw = () => {
    pending = undefined;
    if (finished) return;
    const t = now();
    lastDraw = t;
    samples.push({ t, bytes: done });
    while (samples.length > 2 && t - samples[1]!.t >= RATE_WINDOW_MS) samples.shift();
    const first = samples[0]!;
    const seconds = (t - first.t) / 1000;
    const rate = seconds >= 0.2 ? (done - first.bytes) / seconds : NaN;
    const columns = typeof o.stream.columns === 'number' && o.stream.columns > 0 ? o.stream.columns : 80;
    o.stream.write(ERASE_LINE + renderBar({ label, done, total, rate, columns }, c));
    drawn = true;
  };

  return {
    update(bytesDone: number) {
      if (finished || !Number.isFinite(bytesDone)) return;
      done = Math.max(0, bytesDone);
      const since = now() - lastDraw;
      if (since >= REDRAW_MS) {
        if (pending) clearTimeout(pending);
        draw();
      } else if (!pending) {
        // Trailing redraw so the last value shows even when updates stop arriving.
        pending = setTimeout(draw, REDRAW_MS - since);
        pending.unref();
      }
    },
    setLabel(text: string) {
      label = text;
    },
    finish() {
      if (finished) return;
      finished = true;
      if (pending) clearTimeout(pending);
      pending = undefined;
      if (drawn) o.stream.write(ERASE_LINE);
    },
  };
}

interface BarState {
  label: string;
  done: number;
  total: number;
  /** Bytes per second, NaN while unknown. */
  rate: number;
  columns: number;
}

type Colors = ReturnType<typeof colors>;

/**
 * The bar line, never wider than columns - 1 (a full-width line would wrap and defeat '\r').
 * On a narrow terminal the ETA goes first, then the rate, then the bar; the label is shortened.
 */
export function renderBar(s: BarState, c?: Colors): string {
  const width = Math.max(1, s.columns - 1);
  const known = s.total > 0;
  const fraction = known ? Math.min(1, s.done / s.total) : 0;
  // Fixed-width slots, so the bar does not jump about as the figures change length.
  const done = formatBytes(s.done).padStart(BYTES_WIDTH);
  const slots = [known ? `${done} / ${formatBytes(s.total)}` : done];
  if (known) slots.push(`${Math.floor(fraction * 100)}%`.padStart(4));
  slots.push((Number.isFinite(s.rate) ? formatRate(s.rate) : '').padStart(BYTES_WIDTH + 2));
  if (known) {
    const remaining = s.total - s.done;
    slots.push(s.rate > 0 && remaining > 0 ? `ETA ${formatDuration(remaining / s.rate)}`.padEnd(12) : ' '.repeat(12));
  }

  let label = printable(s.label);
  const figures = () => slots.join('  ');
  for (;;) {
    // Room for label and bar once the figures and the two-space gaps are placed.
    const room = width - figures().length - 4;
    const labelRoom = room - MIN_BAR_CELLS - 2;
    if (labelRoom >= Math.min(displayWidth(label), MIN_LABEL)) {
      label = truncateToWidth(label, labelRoom);
      const inner = Math.min(MAX_BAR_CELLS, room - displayWidth(label) - 2);
      const filled = Math.round(fraction * inner);
      const bar = `[${'#'.repeat(filled)}${'-'.repeat(inner - filled)}]`;
      return [label, c ? c.cyan(bar) : bar, figures()].filter(Boolean).join('  ').trimEnd();
    }
    // Narrow terminal: drop the ETA, then the rate, before giving up the bar.
    if (slots.length <= (known ? 2 : 1)) break;
    slots.pop();
  }
  // No bar: the figures stay whole while the label can give way; then everything is cut.
  const bare = slots.map((x) => x.trim()).join('  ');
  const labelRoom = width - bare.length - 2;
  if (label && labelRoom >= 4) return `${truncateToWidth(label, labelRoom)}  ${bare}`;
  return truncateToWidth(bare, width);
}
