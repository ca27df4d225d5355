// What `get` and the interactive peer show of a set of files (README "Folders and many files"):
// one progress bar for the whole set ("12/40 files", bytes, rate, ETA), then one summary line,
// and a line for each file that failed.
import type { GetOptions, SetResult } from '../peer/fetch-set';
import type { colors } from './output';
import { createProgress, type Progress } from './progress';
import { setSummaryLine } from './result';
import { escaped } from './text';

type SetHooks = Pick<GetOptions, 'onPlan' | 'onFile' | 'onProgress'>;

/** The hooks that drive one progress display for a set on `stream` (silent when disabled or not a TTY). */
export function setProgress(stream: NodeJS.WriteStream, disabled: boolean): SetHooks & { finish(): void } {
  let progress: Progress | undefined;
  let planned = 0;
  let ended = 0;
  const label = () => `${ended}/${planned} files`;
  return {
    onPlan: (plan) => {
      planned = plan.files;
      progress = createProgress({ stream, label: label(), total: plan.bytes, disabled });
    },
    onFile: (outcome) => {
      if (outcome.status === 'present') return; // counted before the bar starts
      ended++;
      progress?.setLabel(label());
    },
    onProgress: (bytesDone) => progress?.update(bytesDone),
    finish: () => progress?.finish(),
  };
}

/** How many files of the set were fetched, were there already, failed. */
export function statusCounts(set: SetResult): { fetched: number; present: number; failed: number } {
  const count = (s: string) => set.files.filter((f) => f.status === s).length;
  return { fetched: count('fetched'), present: count('present'), failed: count('failed') };
}

/** The summary line of a set for a person. */
export function setSummary(set: SetResult, downloads: string, c?: ReturnType<typeof colors>): string {
  return setSummaryLine({ ...statusCounts(set), bytes: set.bytes, bytesTransferred: set.bytesTransferred, seconds: set.seconds, downloads, route: set.route }, c);
}

/** One line per file that failed (none when the set stopped: every one failed for the same reason). */
export function setFailureLines(set: SetResult, c: ReturnType<typeof colors>): string[] {
  if (set.stopped) return [];
  return set.files.filter((f) => f.status === 'failed').map((f) => `${c.red('✗')} ${escaped(f.name)}: ${escaped(f.error?.message ?? 'failed')}`);
}
