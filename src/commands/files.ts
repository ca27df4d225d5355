import type { Command } from './args';
import { boolOpt, registryOption, registryUrl } from './args';
import { listFiles, defaultVia } from '../peer/fetch';
import type { ListEntry } from '../wire/control';
import { RegistryClient } from '../registry/client';
import { formatBytes } from '../ui/format';
import { displayWidth, padToWidth, printable } from '../ui/text';

export const filesCommand: Command = {
  name: 'files',
  summary: "list a peer's shared files",
  help: `Usage: p2pshare files PEER [--registry URL] [--json]

Lists the files PEER shares: name, size, kind and how it would travel
(--json: {"files":[{"name","size","sha256","kind"}]}).`,
  options: { ...registryOption, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run(args) {
    const peer = args.positionals[0]!;
    const files = await listFiles(new RegistryClient(registryUrl(args)), peer);
    if (boolOpt(args, 'json')) {
      const out = files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256, kind: f.kind, ...(f.width ? { width: f.width, height: f.height } : {}) }));
      process.stdout.write(`${JSON.stringify({ files: out })}\n`);
    } else {
      process.stdout.write(fileTable(files));
      if (files.length === 0) process.stderr.write(`${peer} shares no files\n`);
    }
  },
};

/** Aligned columns: name, size, kind (with an image's dimensions), how it would travel. */
export function fileTable(files: ListEntry[]): string {
  const rows = files.map((f) => [printable(f.name), formatBytes(f.size), f.width && f.height ? `${f.kind} ${f.width} × ${f.height}` : f.kind, defaultVia(f)] as const);
  const width = (col: 0 | 2, cap: number) => Math.min(cap, rows.reduce((w, r) => Math.max(w, displayWidth(r[col])), 0));
  const nameW = width(0, 40);
  const kindW = width(2, 24);
  return rows.map(([name, size, kind, via]) => `${padToWidth(name, nameW)}  ${size.padStart(8)}  ${padToWidth(kind, kindW)}  ${via}\n`).join('');
}
