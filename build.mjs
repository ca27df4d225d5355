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
// stored packed (Brotli, base64) in a comment at the end of dist/p2pshare.cjs behind a few lines
// that answer --version at once and otherwise unpack and compile the program: skipping a comment
// costs next to nothing. A second comment after it holds V8's code cache of the program
// (codeCacheFor), so that compiling it costs next to nothing too. The executable embeds the
// program itself (programOf), with its own code cache.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants } from 'node:zlib';

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
export async function buildBundle({ outfile = resolve(root, 'dist/p2pshare.cjs'), plugins = [], codeCache = true } = {}) {
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
  const text = embedProgram(program, version);
  await writeFile(outfile, codeCache ? text + packed(CACHE_START, codeCacheFor(program), CACHE_END) : text, 'latin1');
  await chmod(outfile, 0o755);
  return main.metafile;
}

const PROGRAM_START = '/*P2PSHARE_PROGRAM\n';
const PROGRAM_END = '\nP2PSHARE_PROGRAM*/\n';
const CACHE_START = '/*P2PSHARE_CODE_CACHE\n';
const CACHE_END = '\nP2PSHARE_CODE_CACHE*/\n';
/** The program is compiled as this function's body (the CommonJS wrapper; line 1 stays line 1). */
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) {';
const WRAP_TAIL = '\n})';

/**
 * The lines before the program. `--version` (and `-v`, as src/cli.ts) is answered without
 * unpacking it; anything else unpacks it and compiles it as the CommonJS module this file is,
 * with V8's code cache from the comment after it when there is one (V8 refuses a cache made by
 * another V8, for other flags or for other source, and then compiles as if there were none; it
 * does not checksum the cache's bytes, so a damaged file is a damaged program, as it always was).
 * Positions in a stack trace are the program's (programOf gives it).
 */
function launcher(version) {
  const split = (marker) => `${JSON.stringify(marker.slice(0, 2))} + ${JSON.stringify(marker.slice(2))}`; // never the marker itself
  const lines = [
    '#!/usr/bin/env node',
    `// p2pshare ${version}: the program is packed in the comment below, unpacked and compiled when a command runs (see build.mjs).`,
    '"use strict";',
    `if (process.argv[2] === '--version' || process.argv[2] === '-v') process.stdout.write(${JSON.stringify(`${version}\n`)});`,
    'else {',
    "  const text = require('node:fs').readFileSync(__filename, 'latin1');",
    '  const unpacked = (start, end) => {',
    '    const at = text.indexOf(start);',
    "    return at < 0 ? undefined : require('node:zlib').brotliDecompressSync(Buffer.from(text.slice(at + start.length, text.indexOf(end, at)), 'base64'));",
    '  };',
    `  const program = unpacked(${split(PROGRAM_START)}, ${split(PROGRAM_END)});`,
    "  if (!program) throw new Error(`${__filename}: no program in it (build it with node build.mjs)`);",
    `  const cachedData = unpacked(${split(CACHE_START)}, ${split(CACHE_END)});`,
    `  const script = new (require('node:vm').Script)(${JSON.stringify(WRAP_HEAD)} + program.latin1Slice() + ${JSON.stringify(WRAP_TAIL)}, { filename: __filename, cachedData });`,
    '  script.runInThisContext()(exports, require, module, __filename, __dirname);',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * V8's code cache of the program, made by this Node: the program compiled as the launcher
 * compiles it, run with `--help` in a child process (which evaluates every command's module),
 * then serialized with the functions that run compiled. A run then skips most of the parsing
 * and compiling of the half-megabyte program (BENCHMARKS.md, start-up).
 */
function codeCacheFor(program) {
  const dir = mkdtempSync(join(tmpdir(), 'p2pshare-build-'));
  try {
    const programFile = join(dir, 'program.js');
    const cacheFile = join(dir, 'cache.bin');
    writeFileSync(programFile, program, 'latin1');
    const child = [
      "const { readFileSync, writeFileSync } = require('node:fs');",
      `const program = readFileSync(${JSON.stringify(programFile)}, 'latin1');`,
      `const script = new (require('node:vm').Script)(${JSON.stringify(WRAP_HEAD)} + program + ${JSON.stringify(WRAP_TAIL)}, { filename: 'p2pshare.cjs' });`,
      `process.on('exit', () => writeFileSync(${JSON.stringify(cacheFile)}, script.createCachedData()));`,
      "process.argv = [process.argv[0], 'p2pshare.cjs', '--help'];",
      "script.runInThisContext()(exports, require, module, 'p2pshare.cjs', '.');",
    ].join('\n');
    execFileSync(process.execPath, ['-e', child], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
    return readFileSync(cacheFile);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The bundle's text: the launcher, then `program` packed in a comment. */
export function embedProgram(program, version) {
  return `${launcher(version)}${packed(PROGRAM_START, Buffer.from(program, 'latin1'), PROGRAM_END)}`;
}

/**
 * `bytes` in a comment: Brotli, then base64 (which never holds the comment's end). A third of
 * the size: every run of the bundle reads and scans the whole file, `--version` included.
 */
function packed(start, bytes, end) {
  const brotli = brotliCompressSync(bytes, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 11, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: bytes.length } });
  return `${start}${brotli.toString('base64')}${end}`;
}

function unpacked(text, start, end) {
  const at = text.indexOf(start);
  const stop = at < 0 ? -1 : text.indexOf(end, at);
  return stop < 0 ? undefined : brotliDecompressSync(Buffer.from(text.slice(at + start.length, stop), 'base64'));
}

/** The code cache a bundle built by buildBundle carries, if any. */
export function codeCacheOf(bundleText) {
  return unpacked(bundleText, CACHE_START, CACHE_END);
}

/** The source the launcher compiles for `program`. */
export function wrappedProgram(program) {
  return WRAP_HEAD + program + WRAP_TAIL;
}

/** The program inside a bundle built by buildBundle (what the executable embeds). */
export function programOf(bundleText) {
  const program = unpacked(bundleText, PROGRAM_START, PROGRAM_END);
  if (!program) throw new Error('no program in the bundle: build it with node build.mjs');
  return program.toString('latin1');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await buildBundle();
