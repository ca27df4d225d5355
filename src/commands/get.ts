import type { Command } from './args';
import { boolOpt, identityOption, registryOption, sessionOptions, stringOpt, usage } from './args';
import { fetchFile, type Via } from '../peer/fetch';
import { safeJson } from '../core/unsafe-text';
import { colors } from '../ui/output';
import { showPreview } from '../ui/preview';
import { createProgress, type Progress } from '../ui/progress';
import { fetchSummaryLine } from '../ui/result';
import { escaped } from '../ui/text';

const JPEG_NAME = /\.(jpe?g|jfif)$/i;

export const getCommand: Command = {
  name: 'get',
  summary: 'fetch a file from a peer, verified',
  help: `Usage: p2pshare get PEER[@FINGERPRINT] FILE [--via auto|tcp|udp] [--downloads DIR] [--registry URL]
                    [--json] [--accept-new-key] [--identity FILE]

Fetches FILE from PEER over an encrypted, authenticated session, verifies its SHA-256 against
the owner's, and saves it in DIR
(default ./downloads) under its own name, or 'name (1).ext' if that exists. Prints the path.
An interrupted download keeps its .part file; running the same command again resumes it.
On a terminal: a progress bar on stderr, a result line, and a preview of a JPEG.

Options:
  --via auto|tcp|udp  transport (default auto: images over UDP, everything else over TCP)
  --downloads DIR     where to save (default ./downloads)
  --json              print {"name","size","sha256","via","route","path","seconds"} instead
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
  positionals: [2, 2],
  async run(args, cli) {
    const [peerArg, file] = args.positionals as [string, string];
    const via = stringOpt(args, 'via') ?? 'auto';
    if (via !== 'auto' && via !== 'tcp' && via !== 'udp') throw usage(`--via must be auto, tcp or udp, got '${via}'`);
    const json = boolOpt(args, 'json');
    let progress: Progress | undefined;
    // Ctrl+C ends the transfer cleanly, so the .part is a correct resume point; fetchFile then
    // fails with one line saying so. A second Ctrl+C, or a transfer that will not end, exits now.
    const interrupt = new AbortController();
    const onInterrupt = () => {
      if (interrupt.signal.aborted) cli.exit('ABORTED');
      interrupt.abort();
      setTimeout(() => cli.exit('ABORTED'), 5000).unref();
    };
    process.on('SIGINT', onInterrupt);
    const res = await fetchFile({
      ...(await sessionOptions(args, peerArg)),
      file,
      via: via as Via,
      downloads: stringOpt(args, 'downloads') ?? 'downloads',
      onStart: ({ entry, offset }) => {
        progress = createProgress({ stream: process.stderr, label: entry.name, total: entry.size, disabled: json });
        progress.update(offset);
      },
      onProgress: (bytesDone) => progress?.update(bytesDone),
      signal: interrupt.signal,
    }).finally(() => {
      process.off('SIGINT', onInterrupt);
      progress?.finish();
    });
    if (json) {
      process.stdout.write(`${safeJson(res)}\n`);
    } else if (process.stdout.isTTY) {
      // A person is reading: the result line in place of the bar, then the picture.
      process.stdout.write(`${fetchSummaryLine(res, colors(process.stdout))}\n`);
      if (JPEG_NAME.test(res.name)) await showPreview(res.path, process.stdout);
    } else {
      // Scripts read the saved path alone, escaped: a control character (from --downloads, say)
      // would end the line early or act on whatever shows it.
      process.stdout.write(`${escaped(res.path)}\n`);
    }
  },
};
