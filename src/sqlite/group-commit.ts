import type { SqliteDatabase } from './open-database.js';

interface Pending<T> {
  readonly item: T;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Collects writes submitted during one turn of the event loop and commits them in a single
 * transaction, so one fsync covers many requests. Every submitter learns the fate of the
 * transaction its write was part of: resolved only after the commit returned.
 */
export class GroupCommit<T> {
  private pending: Pending<T>[] = [];
  private scheduled = false;
  private commits = 0;
  private readonly write: (items: readonly T[]) => void;

  constructor(
    db: SqliteDatabase,
    apply: (items: readonly T[]) => void,
    private readonly maxBatch = 2000,
  ) {
    this.write = db.transaction((items: readonly T[]) => apply(items));
  }

  /** Number of transactions committed so far (observability and tests). */
  get commitCount(): number {
    return this.commits;
  }

  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  submitMany(items: readonly T[]): Promise<void> {
    return Promise.all(items.map((item) => this.submit(item))).then(() => undefined);
  }

  private flush(): void {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      try {
        this.write(batch.map((p) => p.item));
        this.commits += 1;
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
  }
}
