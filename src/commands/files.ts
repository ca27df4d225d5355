import type { Command } from '../cli/command';
import { boolOpt, registryOption, registryUrl } from '../cli/command';
import { ExitCode } from '../cli/errors';
import { listFiles, defaultVia } from '../peer/fetch';
import type { ListEntry } from '../peer/control';
import { RegistryClient } from '../registry/client';
import { formatBytes } from '../ui/format';

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
    return ExitCode.ok;
  },
};

/** Aligned columns: name, size, kind (with an image's dimensions), how it would travel. */
export function fileTable(files: ListEntry[]): string {
  const rows = files.map((f) => [f.name, formatBytes(f.size), f.width && f.height ? `${f.kind} ${f.width} × ${f.height}` : f.kind, defaultVia(f)]);
  const width = (col: number, cap: number) => Math.min(cap, rows.reduce((w, r) => Math.max(w, [...r[col]!].length), 0));
  const nameW = width(0, 40);
  const sizeW = width(1, 10);
  const kindW = width(2, 24);
  const pad = (s: string, w: number) => s + ' '.repeat(Math.max(0, w - [...s].length));
  return rows.map(([name, size, kind, via]) => `${pad(name!, nameW)}  ${' '.repeat(Math.max(0, sizeW - size!.length))}${size}  ${pad(kind!, kindW)}  ${via}\n`).join('');
}
