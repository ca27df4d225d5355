// The interactive `peer` driven through a real pseudo-terminal (util-linux `script`): the built CLI
// asks for a name (a taken one is refused and asked again), registers, offers the live peer list,
// survives an offline peer with one error line, fetches a picked file byte-exact, announces an
// incoming fetch, and on Ctrl+C unregisters and exits 0 with the cursor shown again.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { PrivateKey } from '../../src/core/x25519';
import { RegistryClient } from '../../src/registry/client';
import { sampleJpeg } from '../../src/ui/sample';
import { CLI, runCli, tempDir, TEST_CONFIG_HOME } from '../support/cli';
import { peerBehindRelay, randomFile, registry, sha256, startPeer } from '../peer/support';

const SCRIPT = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p)) ?? whichScript();

function whichScript(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

const skipReason = SCRIPT ? false : '!!! SKIPPED: util-linux `script` not found (apt-get install bsdutils); the interactive peer is untested !!!';
if (skipReason && process.env.CI === 'true') throw new Error('`script` (util-linux) is required under CI for the interactive peer test');
if (skipReason) console.error(skipReason);

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[78]|\x1b\][^\x07]*\x07|\r/g;
const DOWN = '\x1b[B';
const ENTER = '\r';
const CTRL_C = '\x03';
const ESC = '\x1b';

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A command running in a pseudo-terminal; keystrokes in, screen output (raw and stripped) out. */
class Pty {
  raw = '';
  readonly exited: Promise<number | null>;
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly waiters = new Set<() => void>();

  constructor(args: string[], cwd: string) {
    const cmd = `stty cols 120 rows 40; exec ${[process.execPath, CLI, ...args].map(shellQuote).join(' ')}`;
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', XDG_CONFIG_HOME: TEST_CONFIG_HOME };
    delete env.NO_COLOR;
    delete env.P2PSHARE_REGISTRY;
    this.proc = spawn(SCRIPT!, ['-qfec', cmd, '/dev/null'], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const onData = (d: string) => {
      this.raw += d;
      for (const w of this.waiters) w();
    };
    // Decoded as streams: a multi-byte character split across chunks stays whole.
    this.proc.stdout.setEncoding('utf8').on('data', onData);
    this.proc.stderr.setEncoding('utf8').on('data', onData);
    this.exited = new Promise((resolve) =>
      this.proc.on('close', (code) => {
        this.proc.stdin.destroy();
        resolve(code);
        for (const w of this.waiters) w();
      }),
    );
  }

  get text(): string {
    return this.raw.replace(ANSI, '');
  }

  type(keys: string): void {
    this.proc.stdin.write(keys);
  }

  /** Waits for `re` in the stripped output after position `from`; resolves with the match and where it ends. */
  waitFor(re: RegExp, from = 0, timeoutMs = 15_000): Promise<{ m: RegExpMatchArray; end: number }> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const rest = this.text.slice(from);
        const m = rest.match(re);
        if (m) {
          done();
          resolve({ m, end: from + m.index! + m[0].length });
        } else if (this.proc.exitCode !== null) {
          done();
          reject(new Error(`the pty command exited (${this.proc.exitCode}) before printing ${re}\n--- screen ---\n${this.text}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${re} within ${timeoutMs} ms\n--- screen ---\n${this.text}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

async function registered(client: RegistryClient, name: string): Promise<boolean> {
  return (await client.list()).some((p) => p.name === name);
}

/** A registry and two folders, 'owner' (what the owner shares) and 'me' (the interactive peer's), removed after `t`. */
async function ownerAndMe(t: TestContext) {
  const reg = await registry();
  t.after(() => reg.close());
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const ownerDir = join(dir, 'owner');
  const meDir = join(dir, 'me');
  await mkdir(ownerDir);
  await mkdir(meDir);
  return { reg, client: new RegistryClient(reg.url), ownerDir, meDir };
}

test('interactive peer in a pseudo-terminal: name, pick, fetch, announce, Ctrl+C', { skip: skipReason, timeout: 90_000 }, async (t) => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run \`node build.mjs\` first (npm test does)`);
  const { reg, client, ownerDir, meDir } = await ownerAndMe(t);
  await writeFile(join(ownerDir, 'a-first.txt'), 'the first file, not the one we pick\n');
  const picture = sampleJpeg(64, 48);
  await writeFile(join(ownerDir, 'c-third.jpg'), picture);
  const evil = 'd-\x1b[2J-evil.txt'; // would clear the screen if printed as is
  await writeFile(join(ownerDir, evil), 'x');
  const wantedSha = await randomFile(join(ownerDir, 'b-second.bin'), 300_000 + 17);
  await writeFile(join(meDir, 'mine.txt'), 'served by the interactive peer\n');

  const owner = await startPeer('owner', reg.url, ownerDir, ['--share', 'a-first.txt', '--share', 'b-second.bin', '--share', 'c-third.jpg', '--share', evil]);
  t.after(() => owner.cli.stop());
  // A registered peer that never answers: choosing it must give one error line, not end the loop.
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => silent.close(() => r())));
  await client.register({ name: 'ghost', port: silent.address().port }, PrivateKey.generate());

  // Its own key: under the owner's key the name 'owner' would be reclaimed, not refused.
  const pty = new Pty(['peer', '--registry', reg.url, '--downloads', join(meDir, 'downloads'), '--identity', join(meDir, '.identity')], meDir);
  t.after(() => pty.kill());

  // No --name: asked. A taken name is refused and asked again.
  let at = (await pty.waitFor(/Your peer name/)).end;
  pty.type('owner');
  pty.type(ENTER);
  at = (await pty.waitFor(/'owner' is taken/, at)).end;
  at = (await pty.waitFor(/Your peer name/, at)).end;
  pty.type('me');
  pty.type(ENTER);
  at = (await pty.waitFor(/peer me ready on udp\/tcp port \d+, key [a-z2-7]{24}, sharing 1 file/, at)).end;
  assert.ok(await registered(client, 'me'), 'the interactive peer is registered');

  // The peer list: ghost and owner, not ourselves, then refresh and quit.
  let list = await pty.waitFor(/Fetch from which peer\?[^\n]*\n(❯[\s\S]*?)quit/, at);
  assert.match(list.m[1]!, /ghost[\s\S]*owner[\s\S]*refresh/);
  const offered = list.m[1]!.split('\n').map((l) => l.replace(/^[❯\s]+/, '').trim());
  assert.ok(offered.includes('owner') && !offered.includes('me'), `we are not offered ourselves: ${JSON.stringify(offered)}`);
  pty.type(ENTER); // ghost, first in the list
  at = (await pty.waitFor(/✖ [^\n]*ghost[^\n]*\n/, list.end, 20_000)).end;

  // The loop goes on: owner this time. Its list shows a hostile name defused; Esc goes back.
  list = await pty.waitFor(/Fetch from which peer\?[^\n]*\n(❯[\s\S]*?)quit/, at);
  pty.type(DOWN);
  await sleep(300);
  pty.type(ENTER);
  let files = await pty.waitFor(/Which file from owner\?[^\n]*\n(❯[\s\S]*?)quit/, list.end);
  assert.match(files.m[1]!, /d-\?\[2J-evil\.txt/, 'control characters in a name are shown as ?');
  assert.ok(!pty.raw.includes('\x1b[2J'), 'no escape sequence from a file name reached the terminal');
  pty.type(ESC);
  list = await pty.waitFor(/Fetch from which peer\?[^\n]*\n(❯[\s\S]*?)quit/, files.end);
  assert.doesNotMatch(pty.text.slice(files.end, list.end), /saved|✖ (?!Which file)/, 'Esc neither fetched nor failed');

  // owner again, then the second of its files.
  pty.type(DOWN);
  await sleep(300);
  pty.type(ENTER);
  files = await pty.waitFor(/Which file from owner\?[^\n]*\n(❯[\s\S]*?)quit/, list.end);
  assert.match(files.m[1]!, /a-first\.txt\s+36 B\s+text\s+via TCP/);
  assert.match(files.m[1]!, /b-second\.bin\s+\S+ KiB\s+other\s+via TCP/);
  pty.type(DOWN);
  await sleep(300);
  pty.type(ENTER);
  const saved = await pty.waitFor(/✓ saved (\S+) {2}(.+), SHA-256 verified/, files.end, 20_000);
  at = saved.end;
  assert.equal(saved.m[1], join(meDir, 'downloads', 'b-second.bin'));
  const got = await readFile(join(meDir, 'downloads', 'b-second.bin'));
  assert.equal(got.length, 300_017);
  assert.equal(createHash('sha256').update(got).digest('hex'), wantedSha, 'the fetched file is byte-exact');
  assert.match(saved.m[2]!, /^293 KiB in .* over tcp\)$/);

  // A JPEG: listed as travelling over UDP, fetched over UDP, previewed (a colour terminal here).
  list = await pty.waitFor(/Fetch from which peer\?[^\n]*\n(❯[\s\S]*?)quit/, at);
  pty.type(DOWN);
  await sleep(300);
  pty.type(ENTER);
  const files2 = await pty.waitFor(/Which file from owner\?[^\n]*\n(❯[\s\S]*?)quit/, list.end);
  assert.match(files2.m[1]!, /c-third\.jpg\s+\S+ KiB\s+image.*via UDP/);
  pty.type(DOWN + DOWN);
  await sleep(300);
  pty.type(ENTER);
  const savedJpeg = await pty.waitFor(/✓ saved (\S+) {2}(.+), SHA-256 verified\n([\s\S]*?)64 × 48\n/, files2.end, 20_000);
  at = savedJpeg.end;
  assert.equal(savedJpeg.m[1], join(meDir, 'downloads', 'c-third.jpg'));
  assert.match(savedJpeg.m[2]!, /over udp\)$/);
  assert.ok((await readFile(savedJpeg.m[1]!)).equals(picture), 'the JPEG is byte-exact');
  assert.ok(savedJpeg.m[3]!.split('\n').filter((l) => l.includes('▀')).length >= 10, 'a half-block preview was drawn');

  // Someone fetches from us while our prompt is up: one announcement line, the prompt survives.
  at = (await pty.waitFor(/Fetch from which peer\?/, at)).end;
  const { dir: other, cleanup: cleanOther } = await tempDir();
  t.after(cleanOther);
  const get = await runCli(['get', 'me', 'mine.txt', '--registry', reg.url, '--downloads', other, '--json'], { timeoutMs: 20_000 });
  assert.equal(get.code, 0, get.stderr);
  at = (await pty.waitFor(/127\.0\.0\.1:\d+ fetched mine\.txt \(\d+ B over TCP\)\n/, at)).end;
  await pty.waitFor(/Fetch from which peer\?[^\n]*\n[\s\S]*quit/, at); // drawn again below it

  // Ctrl+C at the prompt: unregistered, exit 0, cursor shown.
  pty.type(CTRL_C);
  const code = await Promise.race([pty.exited, sleep(10_000, 'timeout' as const, { ref: false })]);
  assert.equal(code, 0, `exit ${code}\n--- screen ---\n${pty.text}`);
  assert.match(pty.text, /me unregistered; bye/);
  if (process.env.SHOW_SCREEN) console.error(pty.text);
  assert.equal(await registered(client, 'me'), false, 'the name is gone from the registry');
  assert.ok(pty.raw.lastIndexOf('\x1b[?25h') > pty.raw.lastIndexOf('\x1b[?25l'), 'the cursor is shown again');
});

test('interactive peer: Ctrl+C in the middle of a transfer exits 0, unregisters, keeps the .part', { skip: skipReason, timeout: 60_000 }, async (t) => {
  const { reg, client, ownerDir, meDir } = await ownerAndMe(t);
  const bigSha = await randomFile(join(ownerDir, 'big.jpg'), 6 * 1024 * 1024);
  const owner = await startPeer('owner', reg.url, ownerDir, ['--share', 'big.jpg']);
  t.after(() => owner.cli.stop());
  // The same files reached through a relay limited to 8 Mbit/s: the 6 MiB image takes seconds over UDP.
  const slow = await peerBehindRelay('slow', reg.url, ownerDir, { toClient: { rateMbit: 8 } }, ['--share', 'big.jpg']);
  t.after(() => slow.stop());

  const downloads = join(meDir, 'downloads');
  const pty = new Pty(['peer', '--name', 'me', '--registry', reg.url, '--downloads', downloads], meDir);
  t.after(() => pty.kill());
  const list = await pty.waitFor(/Fetch from which peer\?[^\n]*\n(❯[\s\S]*?)quit/);
  pty.type(DOWN); // owner, slow
  await sleep(300);
  pty.type(ENTER);
  const files = await pty.waitFor(/Which file from slow\?[^\n]*\n(❯[\s\S]*?)quit/, list.end);
  assert.match(files.m[1]!, /big\.jpg\s+6\.0 MiB\s+image.*via UDP/);
  pty.type(ENTER);
  // Wait until bytes are arriving, then Ctrl+C (the terminal is not in raw mode during a transfer).
  const partBytes = async () => {
    const names = await readdir(downloads).catch(() => [] as string[]);
    const part = names.find((n) => n.endsWith('.part'));
    return part ? (await stat(join(downloads, part))).size : 0;
  };
  const deadline = Date.now() + 15_000;
  while ((await partBytes()) < 256 * 1024) {
    assert.ok(Date.now() < deadline, `no bytes arrived\n--- screen ---\n${pty.text}`);
    await sleep(50);
  }
  assert.ok(slow.relay.counters.toClient.forwarded > 0);
  pty.type(CTRL_C);
  const code = await Promise.race([pty.exited, sleep(10_000, 'timeout' as const, { ref: false })]);
  assert.equal(code, 0, `exit ${code}\n--- screen ---\n${pty.text}`);
  assert.equal(await registered(client, 'me'), false, 'unregistered');
  const kept = await partBytes();
  assert.ok(kept > 0 && kept < 6 * 1024 * 1024, `the partial file is kept for a resume (${kept} bytes)`);
  assert.ok(!(await readdir(downloads)).includes('big.jpg'), 'no complete file claimed');
  assert.ok(pty.raw.lastIndexOf('\x1b[?25h') > pty.raw.lastIndexOf('\x1b[?25l'), 'the cursor is shown again');

  // A new session under the same (freed) name resumes the .part straight from the owner, byte-exact.
  const again = new Pty(['peer', '--name', 'me', '--registry', reg.url, '--downloads', downloads], meDir);
  t.after(() => again.kill());
  const list2 = await again.waitFor(/Fetch from which peer\?[^\n]*\n(❯[\s\S]*?)quit/);
  again.type(ENTER); // owner, first
  const files2 = await again.waitFor(/Which file from owner\?[^\n]*\n(❯[\s\S]*?)quit/, list2.end);
  again.type(ENTER);
  const saved = await again.waitFor(/✓ saved (\S+) {2}(.+), SHA-256 verified/, files2.end, 30_000);
  assert.equal(saved.m[1], join(downloads, 'big.jpg'));
  assert.match(saved.m[2]!, /resumed at /);
  assert.equal(await sha256(join(downloads, 'big.jpg')), bigSha, 'the resumed file is byte-exact');
  assert.deepEqual(await readdir(downloads), ['big.jpg'], 'no .part or lock left');
  again.type(CTRL_C);
  assert.equal(await Promise.race([again.exited, sleep(10_000, 'timeout' as const, { ref: false })]), 0, again.text);

  // The owner, left in the middle of a send, still stops cleanly on Ctrl+C (not killed after 10 s).
  assert.equal(await owner.cli.stop('SIGINT'), 0, owner.cli.stderr);
});

test('interactive peer: Ctrl+C while asking the name exits 0 and registers nothing', { skip: skipReason, timeout: 30_000 }, async (t) => {
  const reg = await registry();
  t.after(() => reg.close());
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const pty = new Pty(['peer', '--registry', reg.url], dir);
  t.after(() => pty.kill());
  await pty.waitFor(/Your peer name/);
  pty.type('half');
  pty.type(CTRL_C);
  const code = await Promise.race([pty.exited, sleep(10_000, 'timeout' as const, { ref: false })]);
  assert.equal(code, 0, pty.text);
  assert.deepEqual(await new RegistryClient(reg.url).list(), []);
  assert.ok(pty.raw.lastIndexOf('\x1b[?25h') > pty.raw.lastIndexOf('\x1b[?25l'), 'the cursor is shown again');
});

test('interactive peer: pasted text and Enter pick what the filter shows; a folder and several files are fetched as sets', { skip: skipReason, timeout: 90_000 }, async (t) => {
  const { reg, client, ownerDir, meDir } = await ownerAndMe(t);
  for (const [name, body] of [['pics/cmyk.txt', 'cmyk\n'], ['pics/sunset.txt', 'sunset\n'], ['pics/deep/z.txt', 'deep\n'], ['notes.txt', 'notes\n']] as const) {
    await mkdir(join(ownerDir, name, '..'), { recursive: true });
    await writeFile(join(ownerDir, name), body);
  }
  const owner = await startPeer('owner', reg.url, ownerDir, ['--share', 'pics', '--share', 'notes.txt']);
  t.after(() => owner.cli.stop());
  // First in the unfiltered peer list, so that a paste picking the first entry picks it.
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => silent.close(() => r())));
  await client.register({ name: 'alpha', port: silent.address().port }, PrivateKey.generate());

  const downloads = join(meDir, 'downloads');
  const pty = new Pty(['peer', '--name', 'me', '--registry', reg.url, '--downloads', downloads], meDir);
  t.after(() => pty.kill());
  const pickOwner = async (from: number) => {
    const list = await pty.waitFor(/Fetch from which peer\?[^\n]*\n(❯[\s\S]*?)quit/, from);
    assert.match(list.m[1]!, /alpha[\s\S]*owner/);
    pty.type(`own${ENTER}`); // one write, as a paste arrives: one read
    const files = await pty.waitFor(/Which file from owner\?[^\n]*\n(❯[\s\S]*?)quit/, list.end);
    return files;
  };

  // A file, pasted with its Enter: not notes.txt, the first of the unfiltered list.
  let files = await pickOwner(0);
  assert.match(files.m[1]!, /^❯\s+notes\.txt[\s\S]*pics\/\s+\S+ B\s+folder, 3 files[\s\S]*pics\/deep\/\s+\S+ B\s+folder, 1 file/);
  pty.type(`sunset${ENTER}`);
  let saved = await pty.waitFor(/✓ saved (\S+) {2}/, files.end, 20_000);
  assert.equal(saved.m[1], join(downloads, 'sunset.txt'));

  // A folder: everything under it, saved as a tree under its own name.
  files = await pickOwner(saved.end);
  pty.type(`pics/deep/${ENTER}`);
  saved = await pty.waitFor(/✓ 1 file \(5 B\) saved under (\S+) in [^\n]*SHA-256 verified/, files.end, 20_000);
  assert.equal(await readFile(join(downloads, 'deep', 'z.txt'), 'utf8'), 'deep\n');

  // Several: Space picks, Enter fetches them as one set.
  files = await pickOwner(saved.end);
  pty.type(`several${ENTER}`);
  const multi = await pty.waitFor(/Which files from owner\?[^\n]*\n/, files.end);
  await sleep(300);
  pty.type(' '); // notes.txt
  pty.type(DOWN + DOWN); // pics/, pics/cmyk.txt
  await sleep(300);
  pty.type(' ');
  await sleep(300);
  pty.type(ENTER);
  saved = await pty.waitFor(/✓ 2 files \(11 B\) saved under \S+ in [^\n]*SHA-256 verified/, multi.end, 20_000);
  assert.equal(await readFile(join(downloads, 'notes.txt'), 'utf8'), 'notes\n');
  assert.equal(await readFile(join(downloads, 'cmyk.txt'), 'utf8'), 'cmyk\n');

  pty.type(CTRL_C);
  assert.equal(await Promise.race([pty.exited, sleep(10_000, 'timeout' as const, { ref: false })]), 0, pty.text);
});
