import type { Command } from './args';
import { boolOpt, identityOption, registryOption, sessionOptions, usage } from './args';
import { defaultVia } from '../peer/fetch';
import { openSession, type SessionOptions } from '../peer/session';
import type { ListEntry } from '../wire/control';
import { formatBytes } from '../ui/format';
import { safeJson } from '../core/unsafe-text';
import { unusableName } from '../transfer/local-names';
import { displayWidth, escaped, padToWidth } from '../ui/text';

export const filesCommand: Command = {
  name: 'files',
  summary: "list a peer's shared files",
  help: `Usage: p2pshare files PEER[@FINGERPRINT] [PREFIX] [--registry URL] [--json] [--accept-new-key]
                     [--identity FILE]

Lists the files PEER shares: name, size, kind and how it would travel, then PEER's key
fingerprint on stderr (--json: {"fingerprint","files":[{"name","size","sha256","kind"}]}).
With PREFIX, only the names that start with it: 'pictures/2024/' lists that folder's tree.
The list comes page by page (8 at a time), as many names as fit a datagram each. A file the owner has not
hashed yet (it hashes a large share in the background) is listed without its SHA-256 (null
with --json); get asks for it all the same. The owner's key is checked and pinned as by get.`,
  options: { ...registryOption, ...identityOption, json: { type: 'boolean' }, 'accept-new-key': { type: 'boolean' } },
  positionals: [1, 2],
  async run(args) {
    const o = await sessionOptions(args, args.positionals[0]!);
    const prefix = args.positionals[1] ?? '';
    // A prefix is the start of a shared name: at most as long, and never a name nobody can share.
    if (Buffer.byteLength(prefix) > 1024 || prefix.includes('\0') || prefix.startsWith('/')) throw usage(`files: '${escaped(prefix)}' cannot start a shared name`);
    const { files, fingerprint } = await listUnder(o, prefix);
    const pending = files.filter((f) => f.sha256 === '').length;
    if (boolOpt(args, 'json')) {
      const out = files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256 || null, kind: f.kind, ...(f.width ? { width: f.width, height: f.height } : {}) }));
      process.stdout.write(`${safeJson({ fingerprint, files: out })}\n`);
    } else {
      process.stdout.write(fileTable(files));
      if (files.length === 0) process.stderr.write(prefix ? `${o.peer} shares no files under '${escaped(prefix)}'\n` : `${o.peer} shares no files\n`);
      if (pending > 0) process.stderr.write(`${pending} of these ${o.peer} has not hashed yet (no SHA-256 listed); get still verifies them\n`);
      process.stderr.write(`${o.peer}'s key: ${fingerprint}\n`);
    }
  },
};

/** PEER's files whose names start with `prefix` ('' for all), and PEER's fingerprint (one session). */
async function listUnder(o: SessionOptions, prefix: string): Promise<{ files: ListEntry[]; fingerprint: string }> {
  const session = await openSession(o);
  try {
    return { files: await session.control.list(session.conn, o.peer, prefix ? { prefix } : {}), fingerprint: session.fingerprint };
  } finally {
    await session.close();
  }
}

/**
 * Aligned columns: name, size, kind (with an image's dimensions), how it would travel. A name
 * with control characters is shown escaped, and marked: `get` refuses it (transfer/local-names.ts).
 */
export function fileTable(files: ListEntry[]): string {
  const rows = files.map(
    (f) => [escaped(f.name), formatBytes(f.size), f.width && f.height ? `${f.kind} ${f.width} × ${f.height}` : f.kind, unusableName(f.name) ? 'unusable name' : defaultVia(f)] as const,
  );
  const width = (col: 0 | 2, cap: number) => Math.min(cap, rows.reduce((w, r) => Math.max(w, displayWidth(r[col])), 0));
  const nameW = width(0, 40);
  const kindW = width(2, 24);
  return rows.map(([name, size, kind, via]) => `${padToWidth(name, nameW)}  ${size.padStart(8)}  ${padToWidth(kind, kindW)}  ${via}\n`).join('');
}
