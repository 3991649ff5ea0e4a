import type { PredictionRecord } from '../protocol/prediction.js';

type Settle = (record: PredictionRecord | undefined) => void;

export interface Waiter {
  /** The final record; undefined if `ms` passed first or the gateway is shutting down. */
  wait(ms: number): Promise<PredictionRecord | undefined>;
  cancel(): void;
}

/**
 * Clients holding their connection for a result (`Prefer: wait`). Bounded: past the cap a
 * request is answered 202 at once instead, so memory stays flat under any load.
 */
export class Waiters {
  private readonly byId = new Map<string, Set<Settle>>();
  private count = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.count;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Registers interest in `id` before it is published, so a fast result is not missed. */
  tryAdd(id: string): Waiter | undefined {
    if (this.count >= this.max) return undefined;
    let settle: Settle = () => undefined;
    const settled = new Promise<PredictionRecord | undefined>((resolve) => {
      settle = resolve;
    });
    this.add(id, settle);
    return {
      wait: async (ms) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), ms);
        });
        const result = await Promise.race([settled, timeout]);
        clearTimeout(timer);
        this.remove(id, settle);
        return result;
      },
      cancel: () => this.remove(id, settle),
    };
  }

  /** Hands a final record to everyone waiting for it. */
  resolve(record: PredictionRecord): void {
    const settles = this.byId.get(record.id);
    if (settles === undefined) return;
    this.byId.delete(record.id);
    this.count -= settles.size;
    for (const settle of settles) settle(record);
  }

  /** Shutdown: every waiting client is answered now; their requests stay queued and pollable. */
  releaseAll(): void {
    const all = [...this.byId.values()];
    this.byId.clear();
    this.count = 0;
    for (const settles of all) for (const settle of settles) settle(undefined);
  }

  private add(id: string, settle: Settle): void {
    const set = this.byId.get(id) ?? new Set<Settle>();
    set.add(settle);
    this.byId.set(id, set);
    this.count += 1;
  }

  private remove(id: string, settle: Settle): void {
    const set = this.byId.get(id);
    if (set?.delete(settle) !== true) return;
    this.count -= 1;
    if (set.size === 0) this.byId.delete(id);
  }
}
