interface Pending<T> {
  readonly items: readonly T[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Collects what callers submit during one turn of the event loop and hands it to `flush` in one
 * call (one produce request instead of one per HTTP request). Each caller's promise settles with
 * the fate of the flush its items were part of.
 */
export class TickBatcher<T> {
  private pending: Pending<T>[] = [];
  private scheduled = false;

  constructor(
    private readonly flush: (items: readonly T[]) => Promise<void>,
    private readonly maxItems = 1000,
  ) {}

  submit(items: readonly T[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ items, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.drain());
      }
    });
  }

  private drain(): void {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch: Pending<T>[] = [];
      let count = 0;
      while (this.pending.length > 0 && (batch.length === 0 || count + (this.pending[0]?.items.length ?? 0) <= this.maxItems)) {
        const next = this.pending.shift() as Pending<T>;
        batch.push(next);
        count += next.items.length;
      }
      this.flush(batch.flatMap((p) => p.items)).then(
        () => batch.forEach((p) => p.resolve()),
        (error: unknown) => batch.forEach((p) => p.reject(error)),
      );
    }
  }
}
