import { BroadcastChannel } from 'node:worker_threads';
import type { SqliteDatabase } from '../../sqlite/open-database.js';
import type { Signals } from '../take-loop.js';

interface Sleeper {
  readonly topic: string;
  readonly since: number;
}

/**
 * Tells idle takers that their topic may hold something new.
 *
 * - Commits from this thread wake the takers of the topics they touched, at once.
 * - Commits from other threads of this process arrive the same way, through a BroadcastChannel
 *   named after the database file.
 * - Commits from other processes are noticed by polling `PRAGMA data_version` (it changes
 *   whenever another connection commits, and reads shared memory, not the disk); those wake
 *   every taker, since the poll cannot say which topic changed.
 */
export class ChangeWatcher {
  private readonly sleepers = new Map<() => void, Sleeper>();
  private readonly dataVersion;
  private readonly siblings: BroadcastChannel;
  private readonly outgoing = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    db: SqliteDatabase,
    private readonly pollMs: number,
  ) {
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
    this.siblings = new BroadcastChannel(`spillway:${db.name}`);
    this.siblings.onmessage = (event) => this.wake((event as { data: string[] }).data);
    this.siblings.unref();
  }

  /** Read before looking for work, then pass to wait(): a commit in between is not missed. */
  version(): number {
    return this.dataVersion.get() as number;
  }

  /** Resolves on news for `topic`, once the data version differs from `since`, after `maxWaitMs`, or on abort. */
  wait(topic: string, since: number, maxWaitMs: number, signals: Signals): Promise<void> {
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
      this.sleepers.set(done, { topic, since });
      this.startPolling();
    });
  }

  /** Something was committed on `topic` here: wake its takers now and tell the other threads soon. */
  notify(topic: string): void {
    this.wake([topic]);
    if (this.outgoing.size === 0) {
      setImmediate(() => {
        if (!this.closed) this.siblings.postMessage([...this.outgoing]);
        this.outgoing.clear();
      });
    }
    this.outgoing.add(topic);
  }

  close(): void {
    this.closed = true;
    for (const wake of [...this.sleepers.keys()]) wake();
    this.stopPolling();
    this.siblings.close();
  }

  private wake(topics: readonly string[]): void {
    for (const [wake, sleeper] of [...this.sleepers]) if (topics.includes(sleeper.topic)) wake();
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
    for (const [wake, sleeper] of [...this.sleepers]) if (current !== sleeper.since) wake();
  }

  private stopPolling(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
