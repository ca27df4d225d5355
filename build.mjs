// Bundles src/cli.ts and every run-time dependency into one CommonJS file, dist/p2pshare.cjs.
// That single file is what the standalone executables (scripts/sea.mjs) embed.
//
// Commands are loaded with import() (src/cli.ts): esbuild turns each into a lazy module
// initialiser in the bundle, so a run only evaluates the code it uses. The worker threads' scripts
// (the JPEG preview's, with jpeg-js; the download hash's) are bundled on their own first and
// embedded as strings: a worker started from source text runs the same from the bundle and from
// the executable, where no file of ours exists to start it from.
//
// V8 parses a whole script before running any of it, so the program (the esbuild output) is
// stored in a comment at the end of dist/p2pshare.cjs behind a few lines that answer --version
// at once and otherwise compile the program from that comment: skipping a comment costs next to
// nothing. The executable embeds the program itself (programOf), with V8's code cache.
import { build } from 'esbuild';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
/** The worker threads' scripts, by the name their starters read them from (src/core/worker-source.ts). */
const WORKERS = {
  P2PSHARE_JPEG_WORKER_SOURCE: 'src/media/jpeg-worker.ts',
  P2PSHARE_HASH_WORKER_SOURCE: 'src/core/hash-worker.ts',
};
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
  // Each worker's script, bundled on its own and given to the main build as the text of a name.
  const define = {};
  for (const [name, entry] of Object.entries(WORKERS)) {
    const worker = await build({ ...common, entryPoints: [resolve(root, entry)], write: false, minify: true });
    define[name] = JSON.stringify(worker.outputFiles[0].text);
  }
  const main = await build({
    ...common,
    entryPoints: [resolve(root, 'src/cli.ts')],
    outfile,
    define,
    // Minified: what a command runs is still parsed in full at each start (1.1 MB -> 0.55 MB,
    // pure ASCII). keepNames keeps functions' and classes' .name, which dependencies may compare;
    // a --debug stack trace shows the short names.
    minify: true,
    keepNames: true,
    sourcemap: false,
    metafile: true,
    plugins,
  });
  const program = await readFile(outfile, 'latin1');
  if (/[^\x00-\x7f]/.test(program)) throw new Error(`${outfile}: the program is not pure ASCII`);
  const { version } = JSON.parse(await readFile(resolve(root, 'package.json'), 'utf8'));
  await writeFile(outfile, embedProgram(program, version), 'latin1');
  await chmod(outfile, 0o755);
  return main.metafile;
}

const PROGRAM_START = '/*P2PSHARE_PROGRAM\n';
const PROGRAM_END = '\nP2PSHARE_PROGRAM*/\n';

/**
 * The lines before the program. `--version` (and `-v`, as src/cli.ts) is answered without
 * compiling it; anything else compiles it as the CommonJS module this file is, its line numbers
 * those of this file. Inside the comment `~` stands as `~0` and `*\/` as `~1`.
 */
function launcher(version) {
  const lines = [
    '#!/usr/bin/env node',
    `// p2pshare ${version}: the program is the comment below, compiled when a command runs (see build.mjs).`,
    '"use strict";',
    `if (process.argv[2] === '--version' || process.argv[2] === '-v') process.stdout.write(${JSON.stringify(`${version}\n`)});`,
    'else {',
    "  const text = require('node:fs').readFileSync(__filename, 'latin1');",
    `  const start = text.indexOf(${JSON.stringify(PROGRAM_START.slice(0, 2))} + ${JSON.stringify(PROGRAM_START.slice(2))});`,
    `  const end = text.lastIndexOf(${JSON.stringify(PROGRAM_END.slice(0, 2))} + ${JSON.stringify(PROGRAM_END.slice(2))});`,
    "  if (start < 0 || end < start) throw new Error(`${__filename}: no program in it (build it with node build.mjs)`);",
    "  const program = text.slice(start + PROGRAM_START_LENGTH, end).replace(/~[01]/g, (m) => (m === '~0' ? '~' : '*/'));",
    "  require('node:vm').compileFunction(program, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: __filename, lineOffset: PROGRAM_LINE })(exports, require, module, __filename, __dirname);",
    '}',
  ];
  return lines
    .join('\n')
    .replace('PROGRAM_START_LENGTH', String(PROGRAM_START.length))
    .replace('PROGRAM_LINE', String(lines.length + 1)) + '\n';
}

/** The bundle's text: the launcher, then `program` in a comment (`~` as `~0`, `*\/` as `~1`). */
export function embedProgram(program, version) {
  return `${launcher(version)}${PROGRAM_START}${program.replace(/~/g, '~0').replace(/\*\//g, '~1')}${PROGRAM_END}`;
}

/** The program inside a bundle built by buildBundle (what the executable embeds). */
export function programOf(bundleText) {
  const start = bundleText.indexOf(PROGRAM_START);
  const end = bundleText.lastIndexOf(PROGRAM_END);
  if (start < 0 || end < start) throw new Error('no program in the bundle: build it with node build.mjs');
  return bundleText.slice(start + PROGRAM_START.length, end).replace(/~[01]/g, (m) => (m === '~0' ? '~' : '*/'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await buildBundle();
