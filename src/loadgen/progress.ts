import { percentile } from './stats.js';

export interface ProgressSnapshot {
  readonly elapsed_s: number;
  readonly phase: 'sending' | 'draining';
  readonly sent: number;
  /** POSTs that got an answer: accepted + rejected + errors. */
  readonly answered: number;
  /**
   * Answered 200/202. Known only once the POST is answered: with --client wait that is when the
   * result comes (or the wait runs out), so requests the gateway holds count under in flight.
   */
  readonly accepted: number;
  readonly rejected: number;
  readonly errors: number;
  readonly completed: number;
  readonly in_flight: number;
  readonly backlog: number | null;
  readonly recent_p50_ms: number | null;
}

export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

/**
 * sent, then what the answered POSTs said, then what is still owed. "accepted" sits inside
 * "answered" so that nobody reads it as the gateway's count of queued requests: a held POST
 * (--client wait) is not answered, and so not counted, until its result comes.
 */
export function formatProgress(s: ProgressSnapshot): string {
  const p50 = s.recent_p50_ms === null ? '-' : `${Math.round(s.recent_p50_ms)} ms`;
  return (
    `${s.elapsed_s.toFixed(0).padStart(4)}s ${s.phase === 'draining' ? 'draining ' : ''}sent ${s.sent} ` +
    `answered ${s.answered} (accepted ${s.accepted} rejected ${s.rejected}${s.errors > 0 ? ` errors ${s.errors}` : ''}) ` +
    `completed ${s.completed} in flight ${s.in_flight} backlog ${s.backlog ?? '?'} p50(5s) ${p50}`
  );
}

/**
 * The progress line on stderr: rewritten in place every second on a terminal, a new line every
 * five seconds otherwise (logs and CI keep every line, so fewer of them).
 */
export class ProgressLine {
  private timer: NodeJS.Timeout | undefined;
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly snapshot: () => ProgressSnapshot,
  ) {}

  start(): void {
    const tty = this.stream.isTTY === true;
    this.timer = setInterval(() => this.draw(), tty ? 1000 : 5000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.draw();
    if (this.stream.isTTY === true && this.drawn) this.stream.write('\n');
  }

  private draw(): void {
    const line = formatProgress(this.snapshot());
    this.drawn = true;
    this.stream.write(this.stream.isTTY === true ? `\r\x1b[K${line}` : `${line}\n`);
  }
}

/** Latencies of the requests that finished in the last `window_ms`, for the progress line. */
export class RecentLatencies {
  private times: number[] = [];
  private values: number[] = [];
  private head = 0;

  constructor(private readonly window_ms: number) {}

  push(now: number, latency: number): void {
    this.times.push(now);
    this.values.push(latency);
  }

  p50(now: number): number | null {
    while (this.head < this.times.length && (this.times[this.head] ?? 0) < now - this.window_ms) this.head++;
    // Compact now and then so the arrays do not grow with the run.
    if (this.head > 4096 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.values = this.values.slice(this.head);
      this.head = 0;
    }
    return percentile(this.values.slice(this.head).sort((a, b) => a - b), 50);
  }
}
