// Bundles src/cli.ts and every run-time dependency into one CommonJS file, dist/p2pshare.cjs.
// That single file is what the standalone executables (scripts/sea.mjs) embed.
import { build } from 'esbuild';
import { chmod } from 'node:fs/promises';

const outfile = 'dist/p2pshare.cjs';
await build({
  entryPoints: ['src/cli.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  banner: { js: '#!/usr/bin/env node' },
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
});
await chmod(outfile, 0o755);
