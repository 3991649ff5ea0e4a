/** Summary of a set of durations in ms; every field is null when the set is empty. */
export interface Distribution {
  readonly count: number;
  readonly mean: number | null;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

const round = (x: number) => Math.round(x * 100) / 100;

/** Nearest-rank percentile of ascending `sorted` (p in 0..100): a value that was actually seen. */
export function percentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? null;
}

/** Skips NaN (unknown) values. Sorts a copy, so the caller's array is untouched. */
export function distribution(values: ArrayLike<number>): Distribution {
  const kept = new Float64Array(values.length);
  let n = 0;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? Number.NaN;
    if (Number.isNaN(v)) continue;
    kept[n++] = v;
    sum += v;
  }
  const sorted = kept.subarray(0, n).sort();
  const at = (p: number) => {
    const v = percentile(sorted, p);
    return v === null ? null : round(v);
  };
  return {
    count: n,
    mean: n === 0 ? null : round(sum / n),
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: n === 0 ? null : round(sorted[n - 1] ?? 0),
  };
}

/**
 * The median of the known (non-NaN) values; for an even count, the mean of the two middle ones.
 * For figures of a few rounds (a ratio per round), where nearest rank would pick one round's.
 */
export function median(values: ArrayLike<number>): number | null {
  const kept = Float64Array.from(values).filter((v) => !Number.isNaN(v)).sort();
  const n = kept.length;
  if (n === 0) return null;
  const mid = Math.floor(n / 2);
  return n % 2 === 1 ? kept[mid]! : (kept[mid - 1]! + kept[mid]!) / 2;
}

/** A growable list of numbers that yields its values as a typed array. */
export class NumberList {
  private data = new Float64Array(256);
  length = 0;

  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }

  values(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}
