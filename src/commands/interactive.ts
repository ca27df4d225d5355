// The interactive `peer` (README "A 60-second tour"): register (asking for a name when needed),
// then loop — pick a peer, pick one of its files, fetch it with a progress bar, show the result —
// while serving others the whole time. Ctrl+C at any point unregisters and resolves 0.
import { basename } from 'node:path';
import type prompts from 'prompts';
import { abortable } from '../core/async';
import { P2pError } from '../core/errors';
import { imageSizeOfFile } from '../media/image-info';
import type { FetchEvent } from '../control/server';
import { fingerprint, type Identity } from '../crypto/identity';
import type { AllowList } from '../peer/allow';
import { defaultVia, fetchFile, listFiles } from '../peer/fetch';
import { getFiles, type GetOptions } from '../peer/fetch-set';
import { Peer, type PeerOptions } from '../peer/peer';
import type { ShareIndex } from '../peer/share';
import { announceHashing } from './hashing';
import { RegistryClient } from '../registry/client';
import { isValidName, nameKey } from '../registry/names';
import { formatBytes } from '../ui/format';
import { colors } from '../ui/output';
import { showPreview } from '../ui/preview';
import { createProgress } from '../ui/progress';
import { fetchSummaryLine } from '../ui/result';
import { printable } from '../ui/text';
import type { ListEntry, TransportName } from '../wire/control';
import { fileChoices, filterChoices } from './file-choices';
import { setFailureLines, setProgress, setSummary } from '../ui/set-output';

export interface InteractiveOptions {
  /** Asked for when missing. */
  name: string | undefined;
  registryUrl: string;
  share: ShareIndex;
  port: number;
  identity: Identity;
  keepaliveMs?: number;
  advertise?: string;
  allow?: AllowList;
  downloads: string;
}

/** The line `peer` prints on stdout once registered (tests and scripts wait for it). */
export function readyLine(peer: Peer, share: ShareIndex): string {
  const files = share.list();
  const names = files.length ? `: ${files.slice(0, 5).map((f) => f.name).join(', ')}${files.length > 5 ? ', ...' : ''}` : '';
  return `peer ${peer.name} ready on udp/tcp port ${peer.port}, key ${fingerprint(peer.identity.publicKey)}, sharing ${files.length} file${files.length === 1 ? '' : 's'} (${share.totalBytes} bytes)${names}`;
}

/** One line about a fetch another peer made from us. */
export function describeFetch(e: FetchEvent): string {
  const who = `${e.from.address}:${e.from.port}`;
  const what = e.files !== undefined ? `${e.files} files` : printable(e.name);
  return e.ok
    ? `${who} fetched ${what} (${formatBytes(e.size - e.offset)} over ${e.via.toUpperCase()})`
    : `${who} failed to fetch ${what}: ${printable(e.error ?? 'unknown error')}`;
}

const REFRESH = '\0refresh';
const QUIT = '\0quit';
const BACK = '\0back';
const SEVERAL = '\0several';
const SHOW_CURSOR = '\x1b[?25h';
/** Options of prompts' autocomplete its type definitions lack: the first Esc clears the filter. */
const LIST_OPTIONS = { clearFirst: true, noMatches: 'no match (Esc clears the filter)' } as object;

/** A prompt instance as prompts' onRender exposes it (`this`); only what the announcer needs. */
interface LivePrompt {
  closed?: boolean;
  firstRender: boolean;
  outputText?: string;
  render(): void;
  out: NodeJS.WriteStream;
}

/**
 * Writes whole lines on the terminal while a prompt may be on screen: erases the prompt, writes
 * the line where it was, and lets the prompt draw itself again below.
 */
class Announcer {
  active: LivePrompt | undefined;

  constructor(private readonly out: NodeJS.WriteStream) {}

  line(text: string): void {
    const p = this.active;
    if (p && !p.closed && typeof p.outputText === 'string') {
      this.out.write(eraseRows(p.outputText, this.out.columns) + text + '\n');
      p.firstRender = true; // draw afresh instead of erasing what is no longer there
      p.render();
    } else {
      this.out.write(`\r\x1b[2K${text}\n`);
    }
  }
}

/** Erases the rows `text` occupies, the cursor being on its last row; ends at column 0. */
function eraseRows(text: string, columns: number | undefined): string {
  // eslint-disable-next-line no-control-regex
  const width = (s: string) => [...s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')].length;
  let rows = 0;
  for (const l of text.split(/\r?\n/)) rows += columns ? 1 + Math.floor(Math.max(width(l) - 1, 0) / columns) : 1;
  return '\x1b[2K' + '\x1b[1A\x1b[2K'.repeat(rows - 1) + '\r';
}

export async function runInteractive(o: InteractiveOptions): Promise<void> {
  const out = process.stdout;
  const c = colors(out);
  const announcer = new Announcer(out);
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) return;
    stop.abort();
    // A prompt waiting for keys: abort it the way Ctrl+C typed into it would.
    if (announcer.active && !announcer.active.closed) process.stdin.emit('keypress', '\x03', { name: 'c', ctrl: true, sequence: '\x03' });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let peer: Peer | undefined;
  let stopAnnouncing = () => {};
  try {
    const ask: Ask = async (question, onEscape) => {
      const answer = await askOne(question, announcer, stop.signal, onEscape);
      return typeof answer === 'string' ? answer : undefined;
    };
    const askMany: AskMany = async (question) => {
      const answer = await askOne(question, announcer, stop.signal);
      return Array.isArray(answer) ? answer : undefined;
    };
    let onFetch: (e: FetchEvent) => void = () => {};
    peer = await register(o, ask, (e) => onFetch(e), (line) => announcer.line(c.yellow(line)), stop.signal);
    if (!peer) return;
    onFetch = (e) => announcer.line(c.dim(describeFetch(e)));
    out.write(`${readyLine(peer, o.share)}\n`);
    const serving = o.share.list().length ? 'others can fetch your files while you browse; ' : '';
    out.write(c.dim(`${serving}downloads go to ${o.downloads}; Ctrl+C unregisters and quits\n`));
    stopAnnouncing = announceHashing(o.share, { line: (text) => announcer.line(c.dim(text)) }); // no live count under a prompt
    const registry = new RegistryClient(o.registryUrl);
    while (!stop.signal.aborted) {
      const owner = await choosePeer(registry, peer.name, ask, out);
      if (owner === undefined || owner === QUIT) break;
      if (owner === REFRESH) continue;
      if (nameKey(owner) === nameKey(peer.name)) {
        out.write(`${c.yellow('!')} that is you; choose another peer\n`);
        continue;
      }
      let entries: ListEntry[];
      try {
        entries = (await abortable(listFiles({ registry, peer: owner, identity: o.identity, signal: stop.signal }), stop.signal)).files;
      } catch (err) {
        if (stop.signal.aborted) break;
        out.write(`${c.red('✖')} ${oneLine(err)}\n`);
        continue;
      }
      if (entries.length === 0) {
        out.write(`${owner} shares no files\n`);
        continue;
      }
      let file = await chooseFile(owner, entries, ask);
      if (file === undefined || file === QUIT) break;
      if (file === BACK) continue;
      let several: string[] | undefined;
      if (file === SEVERAL) {
        several = await chooseSeveral(owner, entries, askMany);
        if (several === undefined && stop.signal.aborted) break;
        if (!several?.length) continue;
      } else if (file.endsWith('/')) {
        several = [file]; // a folder: everything under it, as one set
      }
      try {
        if (several) {
          await fetchSetAndShow({ registry, identity: o.identity, peer: owner, names: several, via: 'auto', downloads: o.downloads, signal: stop.signal });
        } else {
          const entry = entries.find((e) => e.name === file)!;
          await fetchAndShow(registry, o.identity, owner, entry, defaultVia(entry), o.downloads, stop.signal);
        }
      } catch (err) {
        if (stop.signal.aborted) break;
        out.write(`${c.red('✖')} ${oneLine(err)}\n`);
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    stopAnnouncing();
    o.share.close();
    out.write(SHOW_CURSOR);
    if (peer) await Promise.race([peer.stop(), new Promise((r) => setTimeout(r, 4000).unref())]);
    if (peer) out.write(c.dim(`${peer.name} unregistered; bye\n`));
    // A fetch abandoned by Ctrl+C may still hold a socket for a while: never let it keep us.
    setTimeout(() => process.exit(), 1500).unref();
  }
}

/** Asks one question; `onEscape` is the answer when Esc leaves a list (prompts would pick the highlighted item). */
type Ask = <T extends string>(question: prompts.PromptObject<T>, onEscape?: string) => Promise<string | undefined>;
/** Asks for several choices; undefined when cancelled. */
type AskMany = <T extends string>(question: prompts.PromptObject<T>) => Promise<string[] | undefined>;

/** One prompt; undefined when cancelled (Ctrl+C, Esc) or when stop was asked for. */
async function askOne<T extends string>(question: prompts.PromptObject<T>, announcer: Announcer, signal: AbortSignal, onEscape?: string): Promise<string | string[] | undefined> {
  if (signal.aborted) return undefined;
  let cancelled = false;
  let escaped = false;
  // Loaded on the first question: `peer --no-interactive` never asks one (README "Start-up").
  const { default: promptsLib } = await import('prompts');
  const answers = await promptsLib(
    {
      ...question,
      onRender(this: unknown) {
        announcer.active = this as LivePrompt;
        submitWhenFiltered(this as FilteringPrompt);
      },
      onState(state: { exited?: boolean }) {
        if (state.exited) escaped = true;
      },
    },
    { onCancel: () => ((cancelled = true), false) },
  );
  announcer.active = undefined;
  if (cancelled || signal.aborted) return undefined;
  if (escaped) return onEscape;
  const v = (answers as Record<string, unknown>)[question.name as string];
  return typeof v === 'string' ? v : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
}

/** prompts' autocomplete as seen from onRender: its filter runs asynchronously (`completing`). */
interface FilteringPrompt {
  completing?: Promise<unknown> | false;
  submit(): void;
  submitsWhenFiltered?: boolean;
}

/**
 * Enter picks what the filter shows. prompts' autocomplete filters asynchronously, so text pasted
 * with its Enter in one read ("sunset\r") was submitted before the filter ran, picking the first
 * entry of the unfiltered list; its submit now waits for the filter of the last key.
 */
function submitWhenFiltered(p: FilteringPrompt): void {
  if (p.submitsWhenFiltered || !('completing' in p)) return;
  p.submitsWhenFiltered = true;
  const submit = p.submit.bind(p);
  let submitting = false;
  p.submit = () => {
    if (submitting) return;
    submitting = true;
    const whenFiltered = (): void => {
      const running = p.completing;
      if (running) void running.then(whenFiltered, whenFiltered);
      else submit();
    };
    whenFiltered();
  };
}

/** Registers; asks for a name when missing, invalid or taken. Undefined when the user gave up. */
async function register(
  o: InteractiveOptions,
  ask: Ask,
  onFetch: (e: FetchEvent) => void,
  onNotice: (line: string) => void,
  signal: AbortSignal,
): Promise<Peer | undefined> {
  let name = o.name;
  for (;;) {
    if (name === undefined || !isValidName(name)) {
      name = await ask({
        type: 'text',
        name: 'name',
        message: 'Your peer name',
        validate: (v: string) => isValidName(v) || '1-32 letters, digits, ".", "_" or "-"',
      });
      if (name === undefined) return undefined;
    }
    const allow = o.allow;
    const opts: PeerOptions = {
      name,
      registryUrl: o.registryUrl,
      share: o.share,
      port: o.port,
      identity: o.identity.privateKey,
      ...(o.keepaliveMs ? { keepaliveMs: o.keepaliveMs } : {}),
      onFetch,
      onNotice,
      ...(o.advertise ? { advertise: o.advertise } : {}),
      ...(allow ? { allow: (key: Buffer) => allow.allows(key) } : {}),
    };
    try {
      const peer = await Peer.start(opts);
      if (signal.aborted) {
        await peer.stop();
        return undefined;
      }
      return peer;
    } catch (err) {
      if (err instanceof P2pError && err.code === 'NAME_TAKEN') {
        process.stdout.write(`The name '${name}' is taken; choose another.\n`);
        name = undefined;
        continue;
      }
      throw err;
    }
  }
}

async function choosePeer(registry: RegistryClient, self: string, ask: Ask, out: NodeJS.WriteStream): Promise<string | undefined> {
  let others: string[];
  try {
    others = (await registry.list()).map((p) => p.name).filter((n) => nameKey(n) !== nameKey(self));
  } catch (err) {
    out.write(`${colors(out).red('✖')} ${oneLine(err)}\n`);
    others = [];
  }
  others.sort((a, b) => a.localeCompare(b));
  const specials = [
    { title: '↻ refresh the list', value: REFRESH },
    { title: '✕ quit', value: QUIT },
  ];
  return ask({
    type: 'autocomplete',
    name: 'peer',
    message: others.length ? `Fetch from which peer? (${others.length} online; you are ${self})` : `No other peer online yet (you are ${self})`,
    choices: [...others.map((n) => ({ title: n, value: n })), ...specials],
    limit: 12,
    ...LIST_OPTIONS,
    suggest: (input: string, choices: prompts.Choice[]) =>
      Promise.resolve(choices.filter((ch) => String(ch.value).startsWith('\0') || ch.title.toLowerCase().includes(input.toLowerCase()))),
  }, REFRESH);
}


/** A file's name, a folder's ('…/'), SEVERAL, BACK or QUIT. */
async function chooseFile(owner: string, entries: ListEntry[], ask: Ask): Promise<string | undefined> {
  return ask({
    type: 'autocomplete',
    name: 'file',
    message: `Which file from ${owner}? (${entries.length})`,
    choices: [
      ...fileChoices(entries),
      { title: '☰ pick several files and folders', value: SEVERAL },
      { title: '← back to the peers', value: BACK },
      { title: '✕ quit', value: QUIT },
    ],
    limit: 12,
    ...LIST_OPTIONS,
    suggest: filterChoices,
  }, BACK);
}

/** Several files and folders, fetched as one set; [] when none was picked. */
function chooseSeveral(owner: string, entries: ListEntry[], askMany: AskMany): Promise<string[] | undefined> {
  return askMany({
    type: 'autocompleteMultiselect',
    name: 'files',
    message: `Which files from ${owner}? (type to filter, Space to pick, Enter when done)`,
    choices: fileChoices(entries),
    instructions: false,
    ...({ optionsPerPage: 12 } as object),
  });
}

async function fetchSetAndShow(o: GetOptions): Promise<void> {
  const out = process.stdout;
  const view = setProgress(process.stderr, false);
  let res;
  try {
    res = await abortable(getFiles({ ...o, ...view }), o.signal!);
  } finally {
    view.finish();
  }
  const c = colors(out);
  if ('single' in res) {
    out.write(`${fetchSummaryLine(res.single, c)}\n`);
    return;
  }
  out.write(`${setSummary(res.set, o.downloads, c)}\n`);
  for (const line of setFailureLines(res.set, c)) out.write(`${line}\n`);
}

async function fetchAndShow(registry: RegistryClient, identity: Identity, owner: string, entry: ListEntry, via: TransportName, downloads: string, signal: AbortSignal): Promise<void> {
  const out = process.stdout;
  const c = colors(out);
  const progress = createProgress({ stream: process.stderr, label: `${printable(entry.name)} via ${via.toUpperCase()}`, total: entry.size });
  let res;
  try {
    res = await abortable(
      fetchFile({ registry, identity, peer: owner, file: entry.name, via, downloads, onProgress: (n) => progress.update(n), signal }),
      signal,
    );
  } finally {
    progress.finish();
  }
  out.write(`${fetchSummaryLine(res, c)}\n`);
  if (/\.jpe?g$/i.test(res.name)) {
    await showPreview(res.path, out);
  } else if (entry.kind === 'image') {
    const size = await imageSizeOfFile(res.path).catch(() => null);
    if (size) out.write(c.dim(`${printable(basename(res.path))}: ${size.width} × ${size.height}\n`));
  }
}

function oneLine(err: unknown): string {
  return printable((err instanceof Error ? err.message : String(err)).split('\n')[0]!);
}

