import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { predict, type Answer } from './http.js';

export interface LoadResult {
  readonly index: number;
  readonly answer: Answer<PredictionRecord> | undefined;
  readonly error?: unknown;
}

/**
 * Sends `count` predictions with at most `concurrency` in flight, calling `onProgress` as they
 * come back. A connection error counts as not accepted, like a 5xx.
 */
export async function sendLoad(o: {
  url: () => string;
  model: string;
  count: number;
  concurrency: number;
  input: (i: number) => unknown;
  headers?: Record<string, string>;
  /** Spaces the sends out (ms between starts), for runs meant to span a fault. */
  intervalMs?: number;
  onProgress?: (done: number) => void;
}): Promise<LoadResult[]> {
  const results: LoadResult[] = [];
  let next = 0;
  let done = 0;
  const lane = async () => {
    for (;;) {
      const index = next++;
      if (index >= o.count) return;
      if (o.intervalMs !== undefined) await new Promise((resolve) => setTimeout(resolve, o.intervalMs));
      try {
        results.push({ index, answer: await predict(o.url(), o.model, o.input(index), o.headers ?? {}) });
      } catch (error) {
        results.push({ index, answer: undefined, error });
      }
      o.onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, lane));
  return results.sort((a, b) => a.index - b.index);
}

export const accepted = (r: LoadResult) => r.answer !== undefined && (r.answer.status === 200 || r.answer.status === 202);
