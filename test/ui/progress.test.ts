import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { createProgress, REDRAW_MS, renderBar } from '../../src/ui/progress';
import { displayWidth } from '../../src/ui/text';
import { fakeTerminal, plain, withEnv } from './support';

const ERASE = '\r\x1b[2K';
const TTY_ENV = { CI: undefined, TERM: 'xterm-256color' };

test('nothing is written when disabled (--json), not a TTY, under CI or on a dumb terminal', async () => {
  const runs: [string, ReturnType<typeof fakeTerminal>, boolean, Record<string, string | undefined>][] = [
    ['disabled', fakeTerminal({ columns: 80 }), true, TTY_ENV],
    ['not a TTY', fakeTerminal({ isTTY: false, columns: 80 }), false, TTY_ENV],
    ['CI', fakeTerminal({ columns: 80 }), false, { CI: 'true', TERM: 'xterm' }],
    ['dumb', fakeTerminal({ columns: 80 }), false, { CI: undefined, TERM: 'dumb' }],
  ];
  for (const [why, stream, disabled, env] of runs) {
    await withEnv(env, async () => {
      let t = 0;
      const p = createProgress({ stream, label: 'a.bin', total: 1000, disabled, now: () => t });
      for (let i = 0; i <= 10; i++) {
        t = i * 1000;
        p.update(i * 100);
      }
      await sleep(REDRAW_MS + 30);
      p.finish();
      assert.equal(stream.text, '', why);
    });
  }
  // The control: the same sequence on an enabled terminal does draw.
  await withEnv(TTY_ENV, () => {
    const stream = fakeTerminal({ columns: 80 });
    const p = createProgress({ stream, label: 'a.bin', total: 1000 });
    p.update(500);
    p.finish();
    assert.ok(stream.chunks.length >= 2);
  });
});

test('redraws at most once per 100 ms, with a trailing redraw of the latest value', async () => {
  await withEnv(TTY_ENV, async () => {
    const stream = fakeTerminal({ columns: 100 });
    let t = 0;
    const p = createProgress({ stream, label: 'photo.jpg', total: 10_000, now: () => t });
    p.update(0); // first update draws at once
    assert.equal(stream.chunks.length, 1);
    for (let i = 1; i < 100; i++) {
      t = i; // 99 updates within 99 ms of fake time
      p.update(i * 10);
    }
    assert.equal(stream.chunks.length, 1, 'no redraw inside the 100 ms window');
    t = 100;
    p.update(2000);
    assert.equal(stream.chunks.length, 2, 'a redraw once 100 ms passed');
    assert.match(plain(stream.chunks[1]!), /2\.0 KiB \/ 9\.8 KiB +20%$/);
    // Updates stop inside a window: the pending redraw still shows the last value.
    t = 150;
    p.update(3000);
    assert.equal(stream.chunks.length, 2);
    t = 400;
    await sleep(REDRAW_MS + 50);
    assert.equal(stream.chunks.length, 3, 'trailing redraw happened');
    assert.match(plain(stream.chunks[2]!), /2\.9 KiB \/ 9\.8 KiB +30%/);
    for (const c of stream.chunks) assert.ok(c.startsWith(ERASE), 'each redraw starts by erasing the line');
    p.finish();
  });
});

test('finish erases the bar once, cancels a pending redraw and ignores later updates', async () => {
  await withEnv(TTY_ENV, async () => {
    const stream = fakeTerminal({ columns: 80 });
    let t = 0;
    const p = createProgress({ stream, label: 'x', total: 100, now: () => t });
    p.update(10);
    t = 20;
    p.update(50); // schedules a trailing redraw
    p.finish();
    p.finish();
    p.update(100);
    await sleep(REDRAW_MS + 50);
    assert.deepEqual(stream.chunks.slice(1), [ERASE]);
  });
  // Finished before anything was drawn: nothing at all.
  await withEnv(TTY_ENV, () => {
    const stream = fakeTerminal({ columns: 80 });
    createProgress({ stream, label: 'x', total: 100 }).finish();
    assert.equal(stream.text, '');
  });
});

test('rate and ETA come from the measured progress', async () => {
  await withEnv(TTY_ENV, () => {
    const stream = fakeTerminal({ columns: 120 });
    let t = 0;
    const MiB = 1024 * 1024;
    const p = createProgress({ stream, label: 'big.bin', total: 100 * MiB, now: () => t });
    p.update(0);
    t = 1000;
    p.update(10 * MiB); // 10 MiB/s, 90 MiB left -> 9 s
    const line = plain(stream.chunks.at(-1)!);
    assert.match(line, /^\r\x1b\[2Kbig\.bin {2}\[#{3}-{27}\] {2}10\.0 MiB \/ 100 MiB {3}10% {2}10\.0 MiB\/s {2}ETA 9\.0 s$/);
    p.finish();
  });
});

test('the bar line never reaches the last column, whatever the width, label or total', () => {
  const labels = ['', 'a.txt', 'a-very-long-file-name-that-goes-on-and-on-and-on.tar.gz', 'фото-отпуска-2024.jpg', '写真.jpg', '東京の写真とビデオのアルバム二〇二四年夏.zip', '🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉.png'];
  for (let columns = 1; columns <= 160; columns++) {
    for (const label of labels) {
      for (const [done, total, rate] of [[0, 0, NaN], [5e6, 1e7, 1e6], [1e7, 1e7, 3e6], [123, 0, 50]] as const) {
        const line = renderBar({ label, done, total, rate, columns });
        assert.ok(displayWidth(plain(line)) <= Math.max(1, columns - 1), `${columns} cols, '${label}': '${line}'`);
      }
    }
  }
  // Wide: everything shows; narrow: the bar and ETA go before the byte counts do.
  const wide = renderBar({ label: 'f.bin', done: 512, total: 1024, rate: 256, columns: 100 });
  assert.equal(wide, 'f.bin  [###############---------------]     512 B / 1.0 KiB   50%     256 B/s  ETA 2.0 s');
  const narrow = renderBar({ label: 'f.bin', done: 512, total: 1024, rate: 256, columns: 30 });
  assert.equal(narrow, 'f.bin  512 B / 1.0 KiB  50%');
});

test('total 0 (empty or unknown size) shows bytes and rate without a percentage or ETA', () => {
  const line = renderBar({ label: 'empty.txt', done: 0, total: 0, rate: NaN, columns: 80 });
  assert.match(line, /^empty\.txt {2}\[-+\] +0 B$/);
  const growing = renderBar({ label: 'stream', done: 4096, total: 0, rate: 1024, columns: 80 });
  assert.match(growing, /4\.0 KiB +1\.0 KiB\/s$/);
  assert.doesNotMatch(growing, /%|ETA/);
});

test('unknown columns fall back to 80', async () => {
  await withEnv(TTY_ENV, () => {
    const stream = fakeTerminal({});
    const label = 'x'.repeat(200);
    const p = createProgress({ stream, label, total: 10 });
    p.update(5);
    const drawn = stream.chunks[0]!.slice(ERASE.length);
    assert.equal(plain(drawn), renderBar({ label, done: 5, total: 10, rate: NaN, columns: 80 }));
    assert.match(plain(drawn), /^x{15}… {2}\[#{5}-{5}\] +5 B \/ 10 B +50%$/);
    p.finish();
  });
});

test("a peer's file name cannot smuggle terminal escapes into the bar", async () => {
  await withEnv({ ...TTY_ENV, NO_COLOR: '1' }, () => {
    const stream = fakeTerminal({ columns: 80 });
    const p = createProgress({ stream, label: 'evil\x1b]0;pwned\x07\x1b[2J\r\n.txt', total: 10 });
    p.update(5);
    p.finish();
    const body = stream.text.split(ERASE).join('');
    assert.doesNotMatch(body, /[\x00-\x1f\x7f-\x9f]/);
    assert.match(body, /^evil\?\]0;pwned\?\?… {2}\[#{5}-{5}\]/);
  });
});
