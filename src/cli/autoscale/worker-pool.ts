import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Logger } from 'pino';

/** A child that exits sooner than this after it was started did not start: it is retried later, not at once. */
const startGraceMs = 10_000;

interface Member {
  readonly child: ChildProcess;
  readonly startedAt: number;
  draining: boolean;
  readonly exited: Promise<void>;
}

export interface WorkerPoolOptions {
  /** Program and arguments that run one worker. */
  readonly command: readonly [string, ...string[]];
  readonly logger: Logger;
  /** After a worker fails to start, no new one is started for this long. */
  readonly retryAfterMs: number;
}

/**
 * The `spillway worker` processes the autoscaler runs. Removing one drains it: SIGTERM, then the
 * worker stops taking, finishes and acks what it holds, and exits; it counts as gone only then.
 * A worker that exits on its own is logged and replaced on a later tick (after `retryAfterMs`
 * when it had only just started), so one that cannot start does not stop the others.
 */
export class WorkerPool {
  private readonly members = new Set<Member>();
  private failedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: WorkerPoolOptions) {}

  /** Workers running or starting, not draining. */
  get size(): number {
    return [...this.members].filter((m) => !m.draining).length;
  }

  /** Workers draining, still finishing what they hold. */
  get draining(): number {
    return [...this.members].filter((m) => m.draining).length;
  }

  /** Starts or drains workers until `size` is `count` (starting none while a failed start is recent). */
  scaleTo(count: number, now = Date.now()): void {
    while (this.size > count) this.drainOne();
    if (this.size < count && now - this.failedAt < this.o.retryAfterMs) return;
    while (this.size < count) this.start(now);
  }

  /** Drains every worker and waits for all of them to exit. */
  async stop(): Promise<void> {
    for (const m of this.members) if (!m.draining) this.drain(m);
    await Promise.all([...this.members].map((m) => m.exited));
  }

  private start(now: number): void {
    const [program, ...args] = this.o.command;
    // A process group of its own: a Ctrl-C at the terminal reaches the autoscaler alone, which then
    // drains each worker once; a worker signalled twice would stop without finishing its work.
    const child = spawn(program, args, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    // once() rejects on 'error': either way the child is gone.
    const exited = once(child, 'exit').then(() => undefined, () => undefined);
    const member: Member = { child, startedAt: now, draining: false, exited };
    this.members.add(member);
    // Spawning itself failed (no such program): there is no exit to wait for.
    child.on('error', (error) => {
      if (!this.members.delete(member)) return;
      this.failedAt = Date.now();
      this.o.logger.error({ err: error, retry_in_ms: this.o.retryAfterMs }, 'could not run a worker; trying again later');
    });
    child.on('exit', (code, signal) => {
      this.members.delete(member);
      if (member.draining) {
        this.o.logger.info({ pid: child.pid, code, signal }, 'worker drained and stopped');
        return;
      }
      const early = Date.now() - member.startedAt < startGraceMs;
      if (early) this.failedAt = Date.now();
      this.o.logger.error(
        { pid: child.pid, code, signal, retry_in_ms: early ? this.o.retryAfterMs : 0 },
        early ? 'a worker failed to start; trying again later' : 'a worker stopped on its own; it will be replaced',
      );
    });
    this.o.logger.info({ pid: child.pid }, 'worker started');
  }

  /** The newest first: it has the least warm state to lose. */
  private drainOne(): void {
    const running = [...this.members].filter((m) => !m.draining);
    const newest = running.reduce<Member | undefined>((a, m) => (a === undefined || m.startedAt > a.startedAt ? m : a), undefined);
    if (newest !== undefined) this.drain(newest);
  }

  private drain(member: Member): void {
    member.draining = true;
    member.child.kill('SIGTERM');
    this.o.logger.info({ pid: member.child.pid }, 'draining a worker');
  }
}
