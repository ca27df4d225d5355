// Bundles src/cli.ts and every run-time dependency into one CommonJS file, dist/p2pshare.cjs.
// That single file is what the standalone executables (scripts/sea.mjs) embed.
//
// Commands are loaded with import() (src/cli.ts): esbuild turns each into a lazy module
// initialiser in the bundle, so a run only evaluates the code it uses. The JPEG preview's worker
// (src/media/jpeg-worker.ts, with jpeg-js) is bundled on its own first and embedded as a string:
// a worker started from source text runs the same from the bundle and from the executable, where
// no file of ours exists to start it from.
import { build } from 'esbuild';
import { chmod } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  legalComments: 'none',
  logLevel: 'warning',
};

/**
 * Builds the bundle to `outfile`; `plugins` are added to the main build (the start-up test traces
 * module evaluation with one). Returns esbuild's metafile of the main build.
 */
export async function buildBundle({ outfile = resolve(root, 'dist/p2pshare.cjs'), plugins = [] } = {}) {
  const worker = await build({
    ...common,
    entryPoints: [resolve(root, 'src/media/jpeg-worker.ts')],
    write: false,
    minify: true,
  });
  const main = await build({
    ...common,
    entryPoints: [resolve(root, 'src/cli.ts')],
    outfile,
    banner: { js: '#!/usr/bin/env node' },
    define: { P2PSHARE_JPEG_WORKER_SOURCE: JSON.stringify(worker.outputFiles[0].text) },
    // Minified: V8 parses every byte of the file at each start, whatever the command runs
    // (1.1 MB -> 0.55 MB, pure ASCII). keepNames keeps functions' and classes' .name, which
    // dependencies may compare; a --debug stack trace shows the short names.
    minify: true,
    keepNames: true,
    sourcemap: false,
    metafile: true,
    plugins,
  });
  await chmod(outfile, 0o755);
  return main.metafile;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await buildBundle();
