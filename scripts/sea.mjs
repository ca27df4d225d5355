#!/usr/bin/env node
// Builds standalone p2pshare executables with Node's single-executable-application (SEA)
// mechanism: the program in the esbuild bundle (dist/p2pshare.cjs, see build.mjs) becomes a SEA
// blob, which is injected into official Node binaries fetched from the npm registry (pinned in
// scripts/sea-targets.json).
//
//   node scripts/sea.mjs [--targets linux-x64,linux-arm64,win-x64,darwin-x64,darwin-arm64]
//                        [--out dist] [--bundle dist/p2pshare.cjs] [--cache .cache/node-sea]
//
// Tarballs are fetched once with `npm pack` into the cache and checked against the pinned
// integrity every time they are used.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync,
  statSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { programOf } from '../build.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pins = JSON.parse(readFileSync(join(root, 'scripts', 'sea-targets.json'), 'utf8'));
const allTargets = Object.keys(pins.targets);

const usage = `Usage: node scripts/sea.mjs [--targets ${allTargets.join(',')}]
                           [--out dist] [--bundle dist/p2pshare.cjs] [--cache .cache/node-sea]`;

function fail(message) {
  console.error(`sea: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = {
    targets: allTargets,
    out: join(root, 'dist'),
    bundle: join(root, 'dist', 'p2pshare.cjs'),
    cache: join(root, '.cache', 'node-sea'),
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      console.log(usage);
      process.exit(0);
    }
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s) : [arg];
    const key = flag.replace(/^--/, '');
    if (!['targets', 'out', 'bundle', 'cache'].includes(key) || !flag.startsWith('--')) {
      fail(`unknown argument '${arg}'\n${usage}`);
    }
    const value = inline ?? argv[++i];
    if (value === undefined || value === '') fail(`--${key} needs a value`);
    if (key === 'targets') {
      const list = value.split(',').map((t) => t.trim()).filter(Boolean);
      const unknown = list.filter((t) => !pins.targets[t]);
      if (unknown.length) fail(`unknown target(s) ${unknown.join(', ')}; known: ${allTargets.join(', ')}`);
      opts.targets = [...new Set(list)];
    } else {
      opts[key] = resolve(value);
    }
  }
  return opts;
}

function run(cmd, args, what, cwd = undefined) {
  const res = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (res.error) fail(`${what}: cannot run ${cmd}: ${res.error.message}`);
  if (res.status !== 0) {
    fail(`${what}: ${cmd} exited ${res.status ?? res.signal}: ${(res.stderr || res.stdout).trim()}`);
  }
  return res.stdout;
}

/** First of `names` found on PATH, or undefined. */
function findTool(names) {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

function sha512Integrity(file) {
  return `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
}

/** The pinned tarball in the cache, fetched with `npm pack` when missing, always integrity-checked. */
function ensureTarball(pin, cache) {
  const tgz = join(cache, `${pin.package}-${pin.version}.tgz`);
  if (existsSync(tgz) && sha512Integrity(tgz) === pin.integrity) return tgz;
  if (existsSync(tgz)) {
    console.error(`sea: cached ${tgz} does not match its pinned integrity; fetching it again`);
    unlinkSync(tgz);
  }
  console.error(`sea: fetching ${pin.package}@${pin.version} from the npm registry`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const res = spawnSync(npm, ['pack', `${pin.package}@${pin.version}`, '--pack-destination', cache, '--silent'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    shell: process.platform === 'win32',
  });
  if (res.status !== 0 || !existsSync(tgz)) {
    fail(`npm pack ${pin.package}@${pin.version} failed: ${(res.stderr || res.error?.message || '').trim()}`);
  }
  const got = sha512Integrity(tgz);
  if (got !== pin.integrity) {
    unlinkSync(tgz);
    fail(`${pin.package}@${pin.version}: integrity mismatch (pinned ${pin.integrity}, got ${got}); tarball deleted`);
  }
  return tgz;
}

/** The Node binary from the tarball, extracted once per verified tarball. */
function ensureBinary(pin, cache) {
  const tgz = ensureTarball(pin, cache);
  const dir = join(cache, `${pin.package}-${pin.version}`);
  const bin = join(dir, pin.binary);
  const marker = join(dir, '.extracted-from');
  if (existsSync(bin) && existsSync(marker) && readFileSync(marker, 'utf8') === pin.integrity) return bin;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  run('tar', ['-xzf', tgz, '-C', dir, pin.binary], `extracting ${pin.binary} from ${tgz}`);
  if (!existsSync(bin)) fail(`${tgz} has no ${pin.binary}`);
  writeFileSync(marker, pin.integrity);
  return bin;
}

/**
 * Inside a SEA, `require` only loads built-in modules, so the bundle must not require anything
 * else by name. Non-literal requires cannot be checked statically; they are listed as a warning.
 */
function checkBundleRequires(bundle) {
  const code = readFileSync(bundle, 'utf8');
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  const literal = /(?<![\w$.])require\(\s*(["'`])([^"'`]+)\1\s*\)/g;
  const external = new Set();
  for (const m of code.matchAll(literal)) if (!builtins.has(m[2])) external.add(m[2]);
  if (external.size) {
    fail(`${bundle} requires non-built-in modules that a SEA cannot load: ${[...external].join(', ')}`);
  }
  const dynamic = code.match(/(?<![\w$.])require\(\s*(?![\s"'`)])/g) ?? [];
  if (dynamic.length) {
    console.error(`sea: warning: ${bundle} has ${dynamic.length} require() call(s) with a computed name; inside the executable they can only load built-in modules`);
  }
}

function hostKey() {
  const os = { linux: 'linux', darwin: 'darwin', win32: 'win' }[process.platform];
  return `${os}-${process.arch}`;
}

/**
 * Generates the SEA blob with the pinned Node of this machine (the blob format follows the Node
 * version). With `codeCache`, the blob carries V8's compiled form of the bundle, so the executable
 * starts without parsing 1 MB of JavaScript; V8 only accepts a cache made by the same build, so
 * that blob is for this machine's target only (Node refuses it for cross-built executables).
 */
function generateBlob(bundle, cache, work, codeCache) {
  const key = hostKey();
  const pin = pins.targets[key];
  if (!pin) fail(`no pinned Node for this machine (${key}) to generate the SEA blob with`);
  const node = ensureBinary(pin, cache);
  chmodSync(node, 0o755);
  const version = run(node, ['--version'], 'checking the blob generator').trim();
  if (version !== `v${pins.nodeVersion}`) fail(`blob generator ${node} is ${version}, expected v${pins.nodeVersion}`);
  const blob = join(work, codeCache ? 'p2pshare-cached.blob' : 'p2pshare.blob');
  const config = join(work, 'sea-config.json');
  // `main` relative to the bundle's folder: the name is embedded in the executable (stack traces),
  // so no build-machine path leaks into it and the output does not depend on where it was built.
  writeFileSync(config, JSON.stringify({
    main: basename(bundle),
    output: blob,
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: codeCache,
  }, null, 2));
  run(node, ['--experimental-sea-config', config], 'generating the SEA blob', dirname(bundle));
  return readFileSync(blob);
}

/** Copies the Node binary for `key` to `dest`, prepared for injection (stripped / unsigned). */
function prepareBinary(key, src, dest) {
  const [os, arch] = key.split('-');
  if (os === 'win') {
    // The Authenticode signature covers the file; injecting into a signed PE leaves a broken one.
    const tool = findTool(['osslsigncode']);
    if (!tool) fail('osslsigncode is needed for the Windows target (Debian/Ubuntu: apt-get install -y osslsigncode)');
    rmSync(dest, { force: true });
    run(tool, ['remove-signature', '-in', src, '-out', dest], 'removing the Windows signature');
    return 'signature removed';
  }
  copyFileSync(src, dest);
  chmodSync(dest, 0o755);
  if (os === 'linux') {
    // Strip before injecting: stripping afterwards drops the injected note and breaks the SEA.
    const native = hostKey() === key ? ['strip'] : [];
    const gnuArch = { x64: 'x86_64', arm64: 'aarch64' }[arch];
    const tool = findTool([`${gnuArch}-linux-gnu-strip`, ...native]);
    if (!tool) {
      console.error(`sea: warning: no strip for ${key} (Debian: apt-get install -y binutils-${gnuArch.replace('_', '-')}-linux-gnu); leaving it unstripped`);
      return 'not stripped';
    }
    run(tool, [dest], `stripping ${key}`);
    return 'stripped';
  }
  return 'as shipped';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(opts.bundle)) fail(`${opts.bundle} not found; run \`node build.mjs\` first`);
  mkdirSync(opts.cache, { recursive: true });
  mkdirSync(opts.out, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'p2pshare-sea-'));
  const postject = createRequire(join(root, 'package.json'))('postject');
  try {
    // The executable runs the program itself: its code cache, not a comment, spares the parse.
    const program = join(work, basename(opts.bundle));
    try {
      writeFileSync(program, programOf(readFileSync(opts.bundle, 'latin1')), 'latin1');
    } catch (err) {
      fail(`${opts.bundle}: ${err.message}`);
    }
    checkBundleRequires(program);
    const blobs = new Map();
    const blobFor = (key) => {
      const codeCache = key === hostKey();
      if (!blobs.has(codeCache)) {
        const blob = generateBlob(program, opts.cache, work, codeCache);
        console.error(`sea: blob ${blob.length} bytes from ${opts.bundle} (Node ${pins.nodeVersion}${codeCache ? ', with code cache' : ''})`);
        blobs.set(codeCache, blob);
      }
      return blobs.get(codeCache);
    };
    for (const key of opts.targets) {
      const blob = blobFor(key);
      const started = Date.now();
      const pin = pins.targets[key];
      const src = ensureBinary(pin, opts.cache);
      const final = join(opts.out, pin.output);
      const partial = join(opts.out, `.${pin.output}.partial`);
      const prepared = prepareBinary(key, src, partial);
      await postject.inject(partial, 'NODE_SEA_BLOB', blob, {
        sentinelFuse: pins.sentinelFuse,
        machoSegmentName: key.startsWith('darwin') ? 'NODE_SEA' : undefined,
        overwrite: true,
      });
      chmodSync(partial, 0o755);
      renameSync(partial, final);
      const mib = (statSync(final).size / 2 ** 20).toFixed(1);
      console.log(`${final}  ${key}  ${mib} MiB  (${prepared}, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => fail(err instanceof Error ? err.message : String(err)));
