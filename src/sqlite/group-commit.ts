import { isBusy, type SqliteDatabase } from './open-database.js';

interface Pending<T> {
  readonly item: T;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export interface GroupCommitOptions {
  /** Most writes in one transaction; more wait for the next. Default 2000. */
  readonly maxBatch?: number;
  /**
   * Least time between two commits (ms) under load, that is while the last commit held more
   * than one write. A write that comes sooner waits out the rest, and the writes of the
   * event-loop turns meanwhile join it: commits then batch across turns (fewer syncs and less
   * work per write). A write after a quiet spell, or after a commit of one write, commits on
   * the next turn, so a lightly loaded path waits for nothing. Default 1; 0 commits every turn.
   */
  readonly minIntervalMs?: number;
  /**
   * For a connection opened without a busy timeout: how long a batch that finds another
   * connection holding the write lock is tried again on later turns of the event loop, before
   * its writes fail. SQLite's own busy handler would sleep in whole milliseconds, stopping the
   * thread (every HTTP request of a gateway) for each; these retries let the thread go on.
   */
  readonly retryWhileBusyMs?: number;
  readonly now?: () => number;
}

/**
 * Collects writes and commits them in a single transaction, so one fsync covers many requests:
 * those of one turn of the event loop, and under load those of the turns until `minIntervalMs`
 * after the last commit. Every submitter learns the fate of the transaction its write was part
 * of: resolved only after the commit returned.
 */
export class GroupCommit<T> {
  private pending: Pending<T>[] = [];
  private scheduled = false;
  private commits = 0;
  private lastCommitAt = Number.NEGATIVE_INFINITY;
  private lastBatchSize = 0;
  private readonly write: (items: readonly T[]) => void;
  private readonly maxBatch: number;
  private readonly minIntervalMs: number;
  private readonly retryWhileBusyMs: number | undefined;
  private readonly now: () => number;
  /** When the batch at the head first found the lock taken, and how often it has tried since. */
  private busySince: number | undefined;
  private busyTries = 0;

  constructor(db: SqliteDatabase, apply: (items: readonly T[]) => void, options: GroupCommitOptions = {}) {
    this.write = db.transaction((items: readonly T[]) => apply(items));
    this.maxBatch = options.maxBatch ?? 2000;
    this.minIntervalMs = options.minIntervalMs ?? 1;
    this.retryWhileBusyMs = options.retryWhileBusyMs;
    this.now = options.now ?? performance.now.bind(performance);
  }

  /** Number of transactions committed so far (observability and tests). */
  get commitCount(): number {
    return this.commits;
  }

  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      const wait = this.lastBatchSize > 1 ? this.lastCommitAt + this.minIntervalMs - this.now() : 0;
      if (wait > 0) setTimeout(() => this.flush(), wait);
      else setImmediate(() => this.flush());
    });
  }

  submitMany(items: readonly T[]): Promise<void> {
    return Promise.all(items.map((item) => this.submit(item))).then(() => undefined);
  }

  private flush(): void {
    this.scheduled = false;
    this.lastBatchSize = this.pending.length;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      try {
        this.write(batch.map((p) => p.item));
        this.commits += 1;
        this.busySince = undefined;
        for (const p of batch) p.resolve();
      } catch (error) {
        if (this.retryLater(batch, error)) return;
        this.busySince = undefined;
        for (const p of batch) p.reject(error);
      }
    }
    this.lastCommitAt = this.now();
  }

  /**
   * Puts a batch that found the lock taken back at the head, to try again soon (on the next
   * turn, then after 1 ms, backing off to 10 ms: trying in a loop would spin the CPU away from
   * the lock's holder), unless it has waited `retryWhileBusyMs` already.
   */
  private retryLater(batch: Pending<T>[], error: unknown): boolean {
    if (this.retryWhileBusyMs === undefined || !isBusy(error)) return false;
    const now = this.now();
    if (this.busySince === undefined) {
      this.busySince = now;
      this.busyTries = 0;
    }
    if (now - this.busySince >= this.retryWhileBusyMs) return false;
    this.busyTries += 1;
    this.pending.unshift(...batch);
    this.scheduled = true;
    if (this.busyTries === 1) setImmediate(() => this.flush());
    else setTimeout(() => this.flush(), Math.min(this.busyTries - 1, 10));
    return true;
  }
}
