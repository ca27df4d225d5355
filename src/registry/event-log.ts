// The registry's log: one line per event, never a stack unless debugging, and events that an
// abuser can cause by the thousand (timeouts, refused connections, aborted bodies) summed: the
// first of a reason is written at once, the rest as one line per reason per interval. Every
// event is also counted for /metrics.

export type LogWrite = (line: string) => void;

export class EventLog {
  /** Events of each reason since the process started (for /metrics). */
  readonly counts = new Map<string, number>();
  /** Reasons with a window open: events not yet written. */
  private readonly pending = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly write: LogWrite = (line) => process.stderr.write(`${line}\n`),
    /** How long events of one reason are summed before their line (default a minute). */
    private readonly intervalMs = 60_000,
    private readonly debug = false,
  ) {}

  /** One more event of `reason`; `detail` describes it in the first line of a window. */
  note(reason: string, detail: string): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    const open = this.pending.get(reason);
    if (open !== undefined) {
      this.pending.set(reason, open + 1);
      return;
    }
    this.pending.set(reason, 0);
    this.write(`registry: ${reason}: ${detail} (more of these are summed once per ${this.windowText()})`);
    this.timer ??= setInterval(() => this.flush(), this.intervalMs).unref();
  }

  /** An unexpected error: one line (its message), the stack only when debugging. */
  error(reason: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.note(reason, message.split('\n')[0]!.slice(0, 300));
    if (this.debug && err instanceof Error && err.stack) this.write(err.stack);
  }

  /** Writes one line per reason seen in the window that closes now, and closes idle ones. */
  flush(): void {
    for (const [reason, n] of this.pending) {
      if (n === 0) this.pending.delete(reason);
      else {
        this.write(`registry: ${reason}: ${n} more in the last ${this.windowText()}`);
        this.pending.set(reason, 0);
      }
    }
    if (this.pending.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const [reason, n] of this.pending) if (n > 0) this.write(`registry: ${reason}: ${n} more`);
    this.pending.clear();
  }

  private windowText(): string {
    return this.intervalMs % 60_000 === 0 ? (this.intervalMs === 60_000 ? 'minute' : `${this.intervalMs / 60_000} minutes`) : `${this.intervalMs / 1000} s`;
  }
}
