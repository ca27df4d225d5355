// What an owner says about hashing its share in the background (README "Sharing many files"):
// one line when it starts, with how many files wait for their digest; on a terminal a redrawn
// count on stderr meanwhile; one line when it is over.
import type { ShareIndex } from '../peer/share';
import { formatBytes } from '../ui/format';
import { progressAllowed } from '../ui/progress';

const REDRAW_MS = 250;
const ERASE_LINE = '\r\x1b[2K';

/**
 * Tells of the hashing still to do, through `line` (whole lines); with `live` a terminal, also
 * a redrawn count there. Returns a stop() that ends both (the closing line then never comes).
 */
export function announceHashing(share: ShareIndex, o: { line: (text: string) => void; live?: NodeJS.WriteStream }): () => void {
  const total = share.pending;
  if (total === 0) return () => {};
  const started = performance.now();
  const files = (n: number) => `${n.toLocaleString('en-US')} file${n === 1 ? '' : 's'}`;
  const all = share.list().length;
  o.line(`hashing ${total === all ? files(total) : `${total.toLocaleString('en-US')} of ${files(all)}`} in the background; until each is hashed, it is listed without its SHA-256 and hashed when asked for`);
  const live = o.live && progressAllowed(o.live) ? o.live : undefined;
  let drawn = false;
  const timer = live
    ? setInterval(() => {
        live.write(`${ERASE_LINE}hashing: ${files(total - share.pending)} of ${total.toLocaleString('en-US')}, ${formatBytes(share.hashedBytes)}`);
        drawn = true;
      }, REDRAW_MS).unref()
    : undefined;
  let stopped = false;
  const stop = () => {
    stopped = true;
    clearInterval(timer);
    if (drawn) live!.write(ERASE_LINE);
    drawn = false;
  };
  void share.hashed.then(() => {
    if (stopped) return;
    stop();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const failed = share.failed ? `; ${files(share.failed)} could not be hashed (a GET for one tries again)` : '';
    o.line(`hashed ${files(Math.max(0, total - share.pending))} in ${seconds} s${failed}`);
  });
  return stop;
}
