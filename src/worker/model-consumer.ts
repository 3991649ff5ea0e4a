import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Delivery } from '../brokers/broker.js';
import type { BatchRunner } from './batch-runner.js';
import { BatchWindow } from './batch-window.js';
import type { BusyMeter } from './busy-meter.js';
import { earliestDeadline } from './delivery-deadline.js';
import type { WorkSource } from './fair-lanes.js';

export interface ModelConsumerOptions {
  readonly model: string;
  readonly source: WorkSource;
  readonly runner: BatchRunner;
  readonly concurrency: number;
  readonly maxBatchSize: number;
  /** A fixed window in ms (0: none), or `auto` (src/worker/batch-window.ts). */
  readonly batchWaitMs: number | 'auto';
  readonly meter: BusyMeter;
  readonly logger: Logger;
}

/**
 * Pulls one model's requests through `concurrency` slots. A slot asks the broker for work only
 * when it is free, so the worker never holds more than it can run; the queue keeps the rest.
 */
export class ModelConsumer {
  private readonly stopping = new AbortController();
  private readonly slots: Promise<void>[] = [];
  private inFlightCount = 0;
  /** Shared by the slots: they see the same arrivals, and each batch any of them runs teaches it. */
  readonly window: BatchWindow;

  constructor(private readonly o: ModelConsumerOptions) {
    this.window = new BatchWindow({ maxBatchSize: o.maxBatchSize, waitMs: o.batchWaitMs, slots: o.concurrency });
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  start(): void {
    for (let i = 0; i < this.o.concurrency; i++) this.slots.push(this.slot());
  }

  /** Stop taking; resolves when every batch in flight has published and acked. */
  async drain(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.slots);
    await this.o.source.close();
  }

  private async slot(): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      let batch: Delivery[];
      try {
        batch = await this.fill(await this.o.source.take(this.o.maxBatchSize, { signal }), signal);
        failures = 0;
      } catch (error) {
        failures += 1;
        const delay = Math.min(5000, 100 * 2 ** failures);
        this.o.logger.error({ err: error, model: this.o.model, retry_in_ms: delay }, 'could not take work from the broker');
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (batch.length === 0) continue;
      this.inFlightCount += batch.length;
      const free = this.o.meter.begin();
      const began = performance.now();
      try {
        // In-flight work finishes even while draining: its signal is not the stop signal.
        await this.o.runner.run(batch);
        // The slot's whole time on the batch, publish and ack included: what a window saves.
        this.window.ran(batch.length, performance.now() - began);
      } catch (error) {
        this.o.logger.error({ err: error, model: this.o.model }, 'batch failed unexpectedly; its requests will be delivered again');
      } finally {
        free();
        this.inFlightCount -= batch.length;
      }
    }
  }

  /**
   * With a batch window, wait for more requests to join the first ones: up to batch_wait_ms, or
   * while the adaptive window says waiting pays; never past what the held deadlines allow.
   */
  private async fill(batch: Delivery[], signal: AbortSignal): Promise<Delivery[]> {
    const { maxBatchSize, batchWaitMs } = this.o;
    this.window.arrived(batch.length);
    if (batch.length === 0 || batchWaitMs === 0) return batch;
    const openedAt = Date.now();
    let deadline = earliestDeadline(batch);
    while (batch.length < maxBatchSize && !signal.aborted) {
      const wait = this.window.waitMs({ held: batch.length, openedAt, deadline });
      if (wait <= 0) break;
      const waitedFrom = performance.now();
      const more = await this.o.source.take(maxBatchSize - batch.length, { timeoutMs: wait });
      this.window.waited(performance.now() - waitedFrom, more.length);
      // An adaptive wait that brought nothing has passed its break-even: run what is held.
      if (more.length === 0 && this.window.adaptive) break;
      this.window.arrived(more.length);
      deadline = Math.min(deadline ?? Infinity, earliestDeadline(more) ?? Infinity);
      batch.push(...more);
    }
    return batch;
  }
}
