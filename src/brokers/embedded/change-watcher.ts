import type { SqliteDatabase } from '../../sqlite/open-database.js';

/**
 * Tells idle takers that the database may hold something new. Commits from this process wake
 * them at once (notify); commits from other processes are noticed by polling
 * `PRAGMA data_version`, which changes whenever another connection commits and reads no disk.
 */
export class ChangeWatcher {
  private readonly sleepers = new Map<() => void, number>();
  private readonly dataVersion;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    db: SqliteDatabase,
    private readonly pollMs: number,
  ) {
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
  }

  /** Read before looking for work, then pass to wait(): a commit in between is not missed. */
  version(): number {
    return this.dataVersion.get() as number;
  }

  /** Resolves once the data version differs from `since`, after `maxWaitMs`, or when a signal aborts. */
  wait(since: number, maxWaitMs: number, signals: readonly (AbortSignal | undefined)[]): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timeout);
        for (const signal of signals) signal?.removeEventListener('abort', done);
        this.sleepers.delete(done);
        if (this.sleepers.size === 0) this.stopPolling();
        resolve();
      };
      const timeout = setTimeout(done, Math.max(0, maxWaitMs));
      for (const signal of signals) signal?.addEventListener('abort', done, { once: true });
      this.sleepers.set(done, since);
      this.startPolling();
    });
  }

  notify(): void {
    for (const wake of [...this.sleepers.keys()]) wake();
  }

  close(): void {
    this.notify();
    this.stopPolling();
  }

  private startPolling(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.poll(), this.pollMs);
    this.timer.unref();
  }

  private poll(): void {
    let current: number;
    try {
      current = this.version();
    } catch {
      return; // closed or busy: each sleeper's own timeout still fires
    }
    for (const [wake, since] of [...this.sleepers]) if (current !== since) wake();
  }

  private stopPolling(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
