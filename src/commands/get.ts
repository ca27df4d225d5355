import type { Command } from './args';
import { boolOpt, identityOption, registryOption, sessionOptions, stringOpt, usage } from './args';
import type { Via } from '../peer/fetch';
import { getFiles, type SetResult } from '../peer/fetch-set';
import { P2pError, type ErrorCode } from '../core/errors';
import { safeJson } from '../core/unsafe-text';
import { colors } from '../ui/output';
import { showPreview } from '../ui/preview';
import { createProgress, type Progress } from '../ui/progress';
import { fetchSummaryLine } from '../ui/result';
import { setFailureLines, setProgress, setSummary, statusCounts } from '../ui/set-output';
import { escaped } from '../ui/text';

const JPEG_NAME = /\.(jpe?g|jfif)$/i;

/** More NAMEs than this on one command line is a mistake (a glob the shell expanded, say). */
const MAX_NAMES = 10_000;

export const getCommand: Command = {
  name: 'get',
  summary: 'fetch files or folders from a peer, verified',
  help: `Usage: p2pshare get PEER[@FINGERPRINT] NAME... [--via auto|tcp|udp] [--downloads DIR] [--registry URL]
                    [--json] [--accept-new-key] [--identity FILE]

Fetches files from PEER over one encrypted, authenticated session, verifies each one's SHA-256
against the owner's, and saves them in DIR (default ./downloads). Each NAME is:
  a file's name       saved under its own name, or 'name (1).ext' if that exists
  a folder            'pictures/' (or 'pictures'): everything under it, saved as pictures/...
  a glob              '*.jpg', 'pictures/**/*.png' (quote it from the shell): * within one
                      folder, ** across folders, ? one character, [abc] one of; saved relative
                      to the folder the glob starts in
One file named exactly prints its path. Several files are one job: a few in flight at once, one
progress display, one path per line (or a summary on a terminal); a file already there with
the same SHA-256 is not fetched again. An interrupted download keeps its .part file; running
the same command again resumes it and fetches only what is missing.
On a terminal: a progress bar on stderr, a result line, and a preview of a JPEG.

Options:
  --via auto|tcp|udp  transport (default auto: images over UDP, everything else over TCP)
  --downloads DIR     where to save (default ./downloads)
  --json              one file: {"name","size","sha256","via","route","path","seconds"};
                      several: {"peer","route","files":[{"name","size","sha256","status",...}],...}
                      with status fetched, present (already there) or failed
  --accept-new-key    PEER's key changed and you checked the new one: accept and pin it
  --identity FILE     this peer's key (default ~/.config/p2pshare/identity)

The first fetch from a name pins its key in known_peers beside the identity; a later different
key is refused (exit 6) unless --accept-new-key. PEER@FINGERPRINT pins a key checked out of band.`,
  options: {
    ...registryOption,
    ...identityOption,
    via: { type: 'string' },
    downloads: { type: 'string' },
    json: { type: 'boolean' },
    'accept-new-key': { type: 'boolean' },
  },
  positionals: [2, MAX_NAMES + 1],
  async run(args, cli) {
    const [peerArg, ...names] = args.positionals as [string, ...string[]];
    const via = stringOpt(args, 'via') ?? 'auto';
    if (via !== 'auto' && via !== 'tcp' && via !== 'udp') throw usage(`--via must be auto, tcp or udp, got '${via}'`);
    const json = boolOpt(args, 'json');
    const downloads = stringOpt(args, 'downloads') ?? 'downloads';
    let progress: Progress | undefined;
    // Ctrl+C ends the transfers cleanly, so each .part is a correct resume point; the get then
    // fails with one line saying so. A second Ctrl+C, or a transfer that will not end, exits now.
    const interrupt = new AbortController();
    const onInterrupt = () => {
      if (interrupt.signal.aborted) cli.exit('ABORTED');
      interrupt.abort();
      setTimeout(() => cli.exit('ABORTED'), 5000).unref();
    };
    process.on('SIGINT', onInterrupt);
    const setView = setProgress(process.stderr, json);
    const res = await getFiles({
      ...(await sessionOptions(args, peerArg)),
      names,
      via: via as Via,
      downloads,
      onSingleStart: ({ entry, offset }) => {
        progress = createProgress({ stream: process.stderr, label: entry.name, total: entry.size, disabled: json });
        progress.update(offset);
      },
      ...setView,
      onProgress: (bytesDone) => (progress ? progress.update(bytesDone) : setView.onProgress?.(bytesDone)),
      signal: interrupt.signal,
    }).finally(() => {
      process.off('SIGINT', onInterrupt);
      progress?.finish();
      setView.finish();
    });
    if ('set' in res) return printSet(res.set, downloads, json);
    const single = res.single;
    if (json) {
      process.stdout.write(`${safeJson(single)}\n`);
    } else if (process.stdout.isTTY) {
      // A person is reading: the result line in place of the bar, then the picture.
      process.stdout.write(`${fetchSummaryLine(single, colors(process.stdout))}\n`);
      if (JPEG_NAME.test(single.name)) await showPreview(single.path, process.stdout);
    } else {
      // Scripts read the saved path alone, escaped: a control character (from --downloads, say)
      // would end the line early or act on whatever shows it.
      process.stdout.write(`${escaped(single.path)}\n`);
    }
  },
};
/**
 * A set's outcome: the JSON document, or a path per line for scripts, or a summary for a person;
 * then, if any file failed, each one on stderr and an error (its code the exit code).
 */
function printSet(set: SetResult, downloads: string, json: boolean): void {
  const failed = set.files.filter((f) => f.status === 'failed');
  if (json) {
    process.stdout.write(`${safeJson({ ...set, ...statusCounts(set) })}\n`);
  } else if (process.stdout.isTTY) {
    process.stdout.write(`${setSummary(set, downloads, colors(process.stdout))}\n`);
  } else {
    for (const f of set.files) if (f.path) process.stdout.write(`${escaped(f.path)}\n`);
  }
  if (failed.length === 0) return;
  if (!json) for (const line of setFailureLines(set, colors(process.stderr))) process.stderr.write(`${line}\n`);
  const codes = new Set(failed.map((f) => f.error?.code ?? 'FAILED'));
  const code: ErrorCode = set.stopped?.code ?? (codes.size === 1 ? [...codes][0]! : 'FAILED');
  const inPlace = set.files.length - failed.length;
  const why = set.stopped?.code === 'ABORTED' ? 'interrupted' : set.stopped ? set.stopped.message : `${failed.length} of ${set.files.length} files failed`;
  throw new P2pError(code, `${why}: ${inPlace} of ${set.files.length} files in place; run the same command again to fetch the rest`);
}
