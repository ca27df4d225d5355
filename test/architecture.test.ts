// Import directions between the folders of src/ (README "Layout"): a layer may import only the
// layers below it, so the codecs stay pure, the transport knows nothing of peers, and only the
// command line knows about exit codes. Every relative import in src/ is read with the TypeScript
// parser (static imports, re-exports, import() calls and import types) and judged by the table.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const SRC = resolve(import.meta.dirname, '..', 'src');

const below = {
  core: [],
  media: ['core'],
  wire: ['core'],
  crypto: ['core', 'wire'],
  net: ['core', 'wire', 'crypto'],
  transfer: ['core', 'wire', 'crypto', 'net'],
  control: ['core', 'wire', 'crypto', 'net', 'transfer'],
  registry: ['core', 'wire'],
  peer: ['core', 'media', 'wire', 'crypto', 'net', 'transfer', 'control', 'registry'],
  ui: ['core', 'media'],
  commands: ['core', 'media', 'wire', 'crypto', 'net', 'transfer', 'control', 'registry', 'peer', 'ui'],
  cli: ['core', 'media', 'wire', 'crypto', 'net', 'transfer', 'control', 'registry', 'peer', 'ui', 'commands'],
} as const satisfies Record<string, readonly string[]>;
type Layer = keyof typeof below;

/** Imports of types only (erased at build time) that a layer may make besides. */
const typesFrom: Partial<Record<Layer, readonly Layer[]>> = { ui: ['peer'] };

function isLayer(name: string): name is Layer {
  return Object.hasOwn(below, name);
}

/** The layer of a path inside src/: its first folder; src/cli.ts is the layer `cli`. */
function layerOf(path: string): string {
  const parts = relative(SRC, path).split(sep);
  return parts.length === 1 ? parts[0]!.replace(/\.ts$/, '') : parts[0]!;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

interface Import {
  specifier: string;
  typeOnly: boolean;
}

/** Every module a file names: import/export … from, import(…), and import('…').Type. */
function importsOf(file: string): Import[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Import[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ specifier: node.moduleSpecifier.text, typeOnly: isTypeOnly(node) });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      found.push({ specifier: arg && ts.isStringLiteralLike(arg) ? arg.text : '<computed>', typeOnly: false });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push({ specifier: node.argument.literal.text, typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function isTypeOnly(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isExportDeclaration(node)) {
    if (node.isTypeOnly) return true;
    return !!node.exportClause && ts.isNamedExports(node.exportClause) && node.exportClause.elements.length > 0 && node.exportClause.elements.every((e) => e.isTypeOnly);
  }
  const clause = node.importClause;
  if (!clause) return false; // a side-effect import runs the module
  if (clause.isTypeOnly) return true;
  if (clause.name || !clause.namedBindings || !ts.isNamedImports(clause.namedBindings)) return false;
  const names = clause.namedBindings.elements;
  return names.length > 0 && names.every((e) => e.isTypeOnly);
}

/** Why `from` may not import `to` (undefined when it may). */
function verdict(from: string, to: string, typeOnly: boolean): string | undefined {
  if (!isLayer(from)) return `src/${from}/ is not a layer of the table`;
  if (!isLayer(to)) return `src/${to}/ is not a layer of the table`;
  if (from === to || (below[from] as readonly string[]).includes(to)) return undefined;
  if (typeOnly && typesFrom[from]?.includes(to)) return undefined;
  return `${from} may not import ${to}${typesFrom[from]?.includes(to) ? ' (types only)' : ''}`;
}

test('every import in src/ follows the layer table', () => {
  const files = sources(SRC);
  const offences: string[] = [];
  let judged = 0;
  for (const file of files) {
    const from = layerOf(file);
    for (const imp of importsOf(file)) {
      if (imp.specifier === '<computed>') {
        offences.push(`${relative(SRC, file)}: import() of a computed path cannot be judged`);
        continue;
      }
      if (!imp.specifier.startsWith('.')) continue; // node: built-ins and packages
      const target = resolve(dirname(file), imp.specifier);
      if (relative(SRC, target).startsWith('..')) continue; // outside src/: package.json
      judged++;
      const why = verdict(from, layerOf(target), imp.typeOnly);
      if (why) offences.push(`src/${relative(SRC, file)} imports '${imp.specifier}': ${why}`);
    }
  }
  assert.ok(files.length > 40 && judged > 100, `only ${files.length} files and ${judged} imports read: is SRC right?`);
  assert.deepEqual(offences, [], `imports against the layer table:\n  ${offences.join('\n  ')}`);
});

test('the judge itself: upward, sideways and type-only edges', () => {
  assert.equal(verdict('transfer', 'peer', false), 'transfer may not import peer');
  assert.equal(verdict('registry', 'net', false), 'registry may not import net');
  assert.equal(verdict('ui', 'peer', true), undefined);
  assert.equal(verdict('ui', 'peer', false), 'ui may not import peer (types only)');
  assert.equal(verdict('commands', 'cli', false), 'commands may not import cli');
  assert.equal(verdict('cli', 'commands', false), undefined);
  assert.equal(verdict('peer', 'peer', false), undefined);
  assert.match(verdict('misc', 'core', false)!, /not a layer/);
  assert.equal(layerOf(join(SRC, 'cli.ts')), 'cli');
  assert.equal(layerOf(join(SRC, 'transfer', 'udp', 'sender.ts')), 'transfer');
});
