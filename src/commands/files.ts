import type { Command } from '../cli/command';
import { boolOpt, registryOption, registryUrl } from '../cli/command';
import { ExitCode } from '../cli/errors';
import { listFiles, defaultVia } from '../peer/fetch';
import { RegistryClient } from '../registry/client';

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
      for (const f of files) {
        const dims = f.width ? ` ${f.width}x${f.height}` : '';
        process.stdout.write(`${f.name}\t${f.size}\t${f.kind}${dims}\t${defaultVia(f)}\n`);
      }
      if (files.length === 0) process.stderr.write(`${peer} shares no files\n`);
    }
    return ExitCode.ok;
  },
};
