// Which files `get PEER NAME...` means and where they land: names, folders, globs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globBase, globToRegExp, isSingleFile, selectFiles } from '../../src/peer/select';
import type { ListEntry } from '../../src/wire/control';

const entry = (name: string): ListEntry => ({ name, size: 1, sha256: '0'.repeat(64), kind: 'other', width: 0, height: 0 });
const list = ['notes.txt', 'pictures/cat.jpg', 'pictures/2024/a.png', 'pictures/2024/deep/b.PNG', 'pictures/2024/deep/c.png', 'picturesque.txt', 'docs/ré sumé.txt', 'lit*eral.txt'].map(entry);
const saved = (names: string[]) => selectFiles(list, names).picks.map((p) => `${p.entry.name} -> ${p.saveAs}`);

test('a file named exactly is saved under its last segment, as a single get always was', () => {
  assert.deepEqual(saved(['pictures/cat.jpg']), ['pictures/cat.jpg -> cat.jpg']);
  assert.equal(isSingleFile(list, ['pictures/cat.jpg']), true);
  assert.equal(isSingleFile(list, ['pictures/cat.jpg', 'notes.txt']), false);
  assert.equal(isSingleFile(list, ['pictures/']), false);
});

test('a folder, with or without its slash, brings its whole tree under its own name', () => {
  const tree = ['pictures/cat.jpg -> pictures/cat.jpg', 'pictures/2024/a.png -> pictures/2024/a.png', 'pictures/2024/deep/b.PNG -> pictures/2024/deep/b.PNG', 'pictures/2024/deep/c.png -> pictures/2024/deep/c.png'];
  assert.deepEqual(saved(['pictures/']), tree);
  assert.deepEqual(saved(['pictures']), tree); // not picturesque.txt: a folder ends at a '/'
  assert.deepEqual(saved(['pictures/2024/deep']), ['pictures/2024/deep/b.PNG -> deep/b.PNG', 'pictures/2024/deep/c.png -> deep/c.png']);
});

test('globs: * stays in one folder, ** crosses folders, ? and [...] match one character', () => {
  assert.deepEqual(saved(['*.txt']), ['notes.txt -> notes.txt', 'picturesque.txt -> picturesque.txt', 'lit*eral.txt -> lit*eral.txt']);
  assert.deepEqual(saved(['pictures/**/*.png']), ['pictures/2024/a.png -> 2024/a.png', 'pictures/2024/deep/c.png -> 2024/deep/c.png']);
  assert.deepEqual(saved(['**/*.[pP][nN][gG]']), ['pictures/2024/a.png -> pictures/2024/a.png', 'pictures/2024/deep/b.PNG -> pictures/2024/deep/b.PNG', 'pictures/2024/deep/c.png -> pictures/2024/deep/c.png']);
  assert.deepEqual(saved(['pictures/*/?.png']), ['pictures/2024/a.png -> 2024/a.png']);
  assert.deepEqual(saved(['docs/r? sum?.txt']), ['docs/ré sumé.txt -> ré sumé.txt']); // ? is one character, not one byte
  assert.deepEqual(saved(['pictures/2024/deep/[!b]*']), ['pictures/2024/deep/c.png -> c.png']);
  assert.equal(globBase('pictures/**/x'), 'pictures/');
  assert.equal(globBase('*.jpg'), '');
  assert.equal(globToRegExp('a/*').test('a/b/c'), false);
  assert.equal(globToRegExp('a/**').test('a/b/c'), true);
  assert.equal(globToRegExp('[/]x').test('/x'), false); // a class never matches '/'
  assert.equal(globToRegExp('a[b').test('a[b'), true); // an unclosed '[' is itself
});

test('a name holding a glob character is still a name when a file has it exactly', () => {
  assert.deepEqual(saved(['lit*eral.txt']), ['lit*eral.txt -> lit*eral.txt']);
});

test('each file once, the first NAME deciding where it goes; NAMEs that match nothing are reported', () => {
  assert.deepEqual(saved(['pictures/2024/a.png', 'pictures/']).slice(0, 2), ['pictures/2024/a.png -> a.png', 'pictures/cat.jpg -> pictures/cat.jpg']);
  assert.equal(selectFiles(list, ['pictures/', '**/*.png']).picks.length, 4);
  assert.deepEqual(selectFiles(list, ['nope/', '*.gif', 'notes.txt']).unmatched, ['nope/', '*.gif']);
});
