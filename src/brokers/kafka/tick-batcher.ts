interface Pending<T> {
  readonly items: readonly T[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Hands what callers submit to `flush` in as few calls as possible, one call at a time:
 * everything submitted while a flush is under way goes into the next one. For a Kafka producer
 * that is one produce request per round trip, always in order, which an idempotent producer
 * needs (its sequence numbers break when requests to a partition overtake each other).
 */
export class TickBatcher<T> {
  private pending: Pending<T>[] = [];
  private flushing = false;

  constructor(
    private readonly flush: (items: readonly T[]) => Promise<void>,
    private readonly maxItems = 1000,
  ) {}

  submit(items: readonly T[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ items, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        // Wait one turn of the event loop so that concurrent callers share the first request.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch: Pending<T>[] = [];
      let count = 0;
      while (this.pending.length > 0 && (batch.length === 0 || count + (this.pending[0]?.items.length ?? 0) <= this.maxItems)) {
        const next = this.pending.shift() as Pending<T>;
        batch.push(next);
        count += next.items.length;
      }
      try {
        await this.flush(batch.flatMap((p) => p.items));
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.flushing = false;
  }
}
