interface Pending<T, R> {
  readonly items: readonly T[];
  readonly resolve: (results: readonly R[]) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Hands what callers submit to `flush` in as few calls as possible, one call at a time:
 * everything submitted while a flush is under way goes into the next one. For a Kafka producer
 * that is one produce request per round trip, always in order, which an idempotent producer
 * needs (its sequence numbers break when requests to a partition overtake each other); for
 * Redis, one pipeline of many gateways' submits per round trip. `flush` answers one result per
 * item, in order; each caller gets those of its own items.
 */
export class TickBatcher<T, R = void> {
  private pending: Pending<T, R>[] = [];
  private flushing = false;

  constructor(
    private readonly flush: (items: readonly T[]) => Promise<readonly R[]>,
    private readonly maxItems = 1000,
  ) {}

  submit(items: readonly T[]): Promise<readonly R[]> {
    return new Promise<readonly R[]>((resolve, reject) => {
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
      const batch: Pending<T, R>[] = [];
      let count = 0;
      while (this.pending.length > 0 && (batch.length === 0 || count + (this.pending[0]?.items.length ?? 0) <= this.maxItems)) {
        const next = this.pending.shift() as Pending<T, R>;
        batch.push(next);
        count += next.items.length;
      }
      try {
        const results = await this.flush(batch.flatMap((p) => p.items));
        let from = 0;
        for (const p of batch) {
          p.resolve(results.slice(from, from + p.items.length));
          from += p.items.length;
        }
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.flushing = false;
  }
}
