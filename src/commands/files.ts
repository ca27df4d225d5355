import type { Command } from './args';
import { boolOpt, identityOption, registryOption, sessionOptions } from './args';
import { listFiles, defaultVia } from '../peer/fetch';
import type { ListEntry } from '../wire/control';
import { formatBytes } from '../ui/format';
import { safeJson } from '../core/unsafe-text';
import { unusableName } from '../transfer/local-names';
import { displayWidth, escaped, padToWidth } from '../ui/text';

export const filesCommand: Command = {
  name: 'files',
  summary: "list a peer's shared files",
  help: `Usage: p2pshare files PEER[@FINGERPRINT] [--registry URL] [--json] [--accept-new-key] [--identity FILE]

Lists the files PEER shares: name, size, kind and how it would travel, then PEER's key
fingerprint on stderr (--json: {"fingerprint","files":[{"name","size","sha256","kind"}]}).
The owner's key is checked and pinned as by get.`,
  options: { ...registryOption, ...identityOption, json: { type: 'boolean' }, 'accept-new-key': { type: 'boolean' } },
  positionals: [1, 1],
  async run(args) {
    const o = await sessionOptions(args, args.positionals[0]!);
    const { files, fingerprint } = await listFiles(o);
    if (boolOpt(args, 'json')) {
      const out = files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256, kind: f.kind, ...(f.width ? { width: f.width, height: f.height } : {}) }));
      process.stdout.write(`${safeJson({ fingerprint, files: out })}\n`);
    } else {
      process.stdout.write(fileTable(files));
      if (files.length === 0) process.stderr.write(`${o.peer} shares no files\n`);
      process.stderr.write(`${o.peer}'s key: ${fingerprint}\n`);
    }
  },
};

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
