import { decodeRecord } from '../protocol/decode-record.js';
import { isTerminal, type PredictionRecord } from '../protocol/prediction.js';

export type RecordListener = (record: PredictionRecord) => void;

/**
 * Event streams (`GET /v1/predictions/{id}/events`) listening for records of one id. Bounded:
 * past the cap a new stream is refused, so memory stays flat however many clients connect.
 *
 * Final records must reach it only once stored (as for waiters): the store writer's notices,
 * the response reader's settle step and the cancel route are its only sources of them.
 */
export class RecordListeners {
  private readonly byId = new Map<string, Set<RecordListener>>();
  private count = 0;
  /** The last raw record seen per id, for the newest ids only (insertion order: oldest first). */
  private readonly seen = new Map<string, string>();

  constructor(
    private readonly max: number,
    private readonly remembered = 1024,
  ) {}

  /**
   * Keeps the newest records that went by on the response stream, unparsed. A stream opened just
   * after a `running` record went by, before the store writer stored it, finds it here.
   */
  remember(id: string, value: string): void {
    this.seen.delete(id);
    this.seen.set(id, value);
    if (this.seen.size > this.remembered) {
      const oldest = this.seen.keys().next();
      if (oldest.done !== true) this.seen.delete(oldest.value);
    }
  }

  /** The progress record last seen for `id`, if still remembered; final ones must come from the store. */
  recent(id: string): PredictionRecord | undefined {
    const value = this.seen.get(id);
    const record = value === undefined ? undefined : decodeRecord(value);
    return record === undefined || isTerminal(record.status) ? undefined : record;
  }

  get size(): number {
    return this.count;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Returns the function that removes the listener, or undefined when the cap is reached. */
  tryListen(id: string, listener: RecordListener): (() => void) | undefined {
    if (this.count >= this.max) return undefined;
    const set = this.byId.get(id) ?? new Set<RecordListener>();
    set.add(listener);
    this.byId.set(id, set);
    this.count += 1;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      set.delete(listener);
      this.count -= 1;
      if (set.size === 0 && this.byId.get(id) === set) this.byId.delete(id);
    };
  }

  notify(record: PredictionRecord): void {
    const set = this.byId.get(record.id);
    if (set === undefined) return;
    // A copy: a listener that sees the final record removes itself while we iterate.
    for (const listener of [...set]) listener(record);
  }
}
