/**
 * In-order commits for concurrent processing within a partition: messages finish in any order,
 * but the committed offset only moves past a message once it and everything before it are done.
 * After a crash, Kafka redelivers from the committed offset: nothing unfinished is skipped.
 */
export class OffsetTracker {
  /** Per partition: offsets handed out and not yet done. */
  private readonly open = new Map<number, Set<bigint>>();
  /** Per partition: the highest offset handed out. */
  private readonly highest = new Map<number, bigint>();
  /** Per partition: what has been (or is being) committed. */
  private readonly committed = new Map<number, bigint>();

  handedOut(partition: number, offset: bigint): void {
    let set = this.open.get(partition);
    if (set === undefined) {
      set = new Set();
      this.open.set(partition, set);
    }
    set.add(offset);
    const top = this.highest.get(partition);
    if (top === undefined || offset > top) this.highest.set(partition, offset);
  }

  done(partition: number, offset: bigint): void {
    this.open.get(partition)?.delete(offset);
  }

  /** Partitions whose commit point moved, with the offset to commit (the next one to read). */
  advance(): Map<number, bigint> {
    const out = new Map<number, bigint>();
    for (const [partition, top] of this.highest) {
      const open = this.open.get(partition);
      let next = top + 1n;
      for (const offset of open ?? []) if (offset < next) next = offset;
      const last = this.committed.get(partition);
      if (last === undefined || next > last) {
        out.set(partition, next);
        this.committed.set(partition, next);
      }
    }
    return out;
  }

  /** Forget partitions this consumer no longer owns: their commits belong to the new owner. */
  retain(partitions: ReadonlySet<number>): void {
    for (const map of [this.open, this.highest, this.committed]) {
      for (const partition of [...map.keys()]) if (!partitions.has(partition)) map.delete(partition);
    }
  }

  owns(partition: number): boolean {
    return this.highest.has(partition);
  }
}
