#!/usr/bin/env node
// Checks the standalone executables in dist/: each file's format from its headers (ELF x86-64,
// ELF aarch64, PE32+ x86-64, Mach-O x86_64, Mach-O arm64) and that the SEA fuse was flipped by
// the injection; then writes dist/SHA256SUMS and verifies it against the files.
//
//   node scripts/check-dist.mjs [--targets linux-x64,...] [--dir dist] [--no-sums]
//   node scripts/check-dist.mjs --verify [--dir dist]   # only verify an existing SHA256SUMS
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pins = JSON.parse(readFileSync(join(root, 'scripts', 'sea-targets.json'), 'utf8'));
const allTargets = Object.keys(pins.targets);

function fail(message) {
  console.error(`check-dist: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { targets: allTargets, dir: join(root, 'dist'), sums: true, verifyOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--no-sums') opts.sums = false;
    else if (arg === '--verify') opts.verifyOnly = true;
    else if (arg === '--dir') opts.dir = resolve(argv[++i] ?? fail('--dir needs a value'));
    else if (arg === '--targets') {
      const list = (argv[++i] ?? fail('--targets needs a value')).split(',').filter(Boolean);
      const unknown = list.filter((t) => !pins.targets[t]);
      if (unknown.length) fail(`unknown target(s) ${unknown.join(', ')}; known: ${allTargets.join(', ')}`);
      opts.targets = list;
    } else fail(`unknown argument '${arg}'`);
  }
  return opts;
}

function readHead(file, length) {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const n = readSync(fd, buf, 0, length, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** The executable format named by a file's first bytes, in the vocabulary of sea-targets.json. */
export function detectFormat(head) {
  if (head.length >= 20 && head.readUInt32BE(0) === 0x7f454c46) {
    if (head[4] !== 2 || head[5] !== 1) return 'elf-other (not 64-bit little-endian)';
    const machine = head.readUInt16LE(0x12);
    return { 0x3e: 'elf-x86-64', 0xb7: 'elf-aarch64' }[machine] ?? `elf-machine-0x${machine.toString(16)}`;
  }
  if (head.length >= 0x40 && head.toString('latin1', 0, 2) === 'MZ') {
    const pe = head.readUInt32LE(0x3c);
    if (pe + 26 > head.length || head.readUInt32BE(pe) !== 0x50450000) return 'mz-without-pe';
    const machine = head.readUInt16LE(pe + 4);
    const magic = head.readUInt16LE(pe + 24);
    const kind = magic === 0x20b ? 'pe32plus' : magic === 0x10b ? 'pe32' : 'pe-unknown';
    return `${kind}-${{ 0x8664: 'x86-64', 0xaa64: 'arm64', 0x14c: 'i386' }[machine] ?? `machine-0x${machine.toString(16)}`}`;
  }
  if (head.length >= 8 && head.readUInt32LE(0) === 0xfeedfacf) {
    const cpu = head.readUInt32LE(4);
    return { 0x01000007: 'macho-x86_64', 0x0100000c: 'macho-arm64' }[cpu] ?? `macho-cpu-0x${cpu.toString(16)}`;
  }
  if (head.length >= 4 && head.readUInt32BE(0) === 0xcafebabe) return 'macho-fat';
  return 'unknown';
}

/**
 * Signature state where it matters for the injected executable: a PE must carry no Authenticode
 * certificate (it would be invalid after injection); a Mach-O must have the NODE_SEA segment and
 * no stale LC_CODE_SIGNATURE (so that `codesign --sign -` on the Mac is enough).
 */
export function signatureProblems(head, format) {
  const problems = [];
  if (format.startsWith('pe32plus')) {
    const opt = head.readUInt32LE(0x3c) + 24;
    const securitySize = head.readUInt32LE(opt + 112 + 4 * 8 + 4);
    if (securitySize !== 0) problems.push('still carries an Authenticode signature (run osslsigncode remove-signature before injecting)');
  }
  if (format.startsWith('macho')) {
    const ncmds = head.readUInt32LE(16);
    const segments = [];
    let signed = false;
    for (let i = 0, off = 32; i < ncmds; i++) {
      if (off + 8 > head.length) {
        problems.push('load commands run past the bytes read');
        break;
      }
      const cmd = head.readUInt32LE(off);
      if (cmd === 0x19) segments.push(head.toString('latin1', off + 8, off + 24).replace(/\0+$/, ''));
      if (cmd === 0x1d) signed = true;
      off += head.readUInt32LE(off + 4);
    }
    if (!segments.includes('NODE_SEA')) problems.push('has no NODE_SEA segment');
    if (signed) problems.push('has a stale LC_CODE_SIGNATURE');
  }
  return problems;
}

/** SHA-256 of the file and whether the SEA fuse reads ":1" (set by postject), in one pass. */
async function scan(file, fuse) {
  const hash = createHash('sha256');
  const armed = Buffer.from(`${fuse}:1`);
  const unarmed = Buffer.from(`${fuse}:0`);
  let tail = Buffer.alloc(0);
  let fuseState = 'missing';
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk);
    const window = Buffer.concat([tail, chunk]);
    if (window.includes(armed)) fuseState = 'armed';
    else if (fuseState === 'missing' && window.includes(unarmed)) fuseState = 'unarmed';
    tail = window.subarray(Math.max(0, window.length - armed.length + 1));
  }
  return { sha256: hash.digest('hex'), fuseState };
}

async function verifySums(dir) {
  const sumsFile = join(dir, 'SHA256SUMS');
  if (!existsSync(sumsFile)) fail(`${sumsFile} not found`);
  const lines = readFileSync(sumsFile, 'utf8').split('\n').filter(Boolean);
  if (lines.length === 0) fail(`${sumsFile} is empty`);
  for (const line of lines) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) fail(`${sumsFile}: malformed line '${line}'`);
    const file = join(dir, m[2]);
    if (m[2] !== basename(m[2]) || !existsSync(file)) fail(`${sumsFile} lists ${m[2]}, which is not in ${dir}`);
    const got = createHash('sha256').update(readFileSync(file)).digest('hex');
    if (got !== m[1]) fail(`${m[2]}: SHA-256 mismatch (SHA256SUMS ${m[1]}, file ${got})`);
  }
  console.log(`${sumsFile}: ${lines.length} file(s) OK`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.verifyOnly) return verifySums(opts.dir);
  const sums = [];
  for (const key of opts.targets) {
    const pin = pins.targets[key];
    const file = join(opts.dir, pin.output);
    if (!existsSync(file)) fail(`${file} (${key}) is missing; build it with node scripts/sea.mjs --targets ${key}`);
    const head = readHead(file, 65536);
    const format = detectFormat(head);
    if (format !== pin.format) fail(`${pin.output}: expected ${pin.format}, found ${format}`);
    const problems = signatureProblems(head, format);
    if (problems.length) fail(`${pin.output}: ${problems.join('; ')}`);
    const { sha256, fuseState } = await scan(file, pins.sentinelFuse);
    if (fuseState !== 'armed') fail(`${pin.output}: SEA fuse ${fuseState}; the blob was not injected`);
    console.log(`${pin.output}  ${format}  SEA blob injected  sha256 ${sha256.slice(0, 16)}…`);
    sums.push(`${sha256}  ${pin.output}\n`);
  }
  if (!opts.sums) return;
  writeFileSync(join(opts.dir, 'SHA256SUMS'), sums.join(''));
  await verifySums(opts.dir);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => fail(err instanceof Error ? err.message : String(err)));
}
