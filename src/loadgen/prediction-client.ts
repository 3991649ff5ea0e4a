import { setTimeout as sleep } from 'node:timers/promises';
import { TransportError, type HttpAnswer, type HttpClient } from './http-client.js';
import type { ClientMode } from './options.js';
import { Fate, Outcome, type RequestLog } from './request-log.js';

/** Statuses that mean "the deployment turned this request away": a full queue or saturated workers. */
export const rejectionStatuses: ReadonlySet<number> = new Set([429, 503]);

export interface ClientObserver {
  answered(i: number): void;
  finished(i: number): void;
}

interface RecordFields {
  readonly id?: string;
  readonly status?: string;
  readonly metrics?: { readonly queue_ms?: number; readonly inference_ms?: number };
}

// Any final status; an expired or canceled prediction counts as completed but not succeeded.
const isFinal = (r: RecordFields | undefined) => r !== undefined && r.status !== undefined && r.status !== 'queued' && r.status !== 'running';

function parseRecord(answer: HttpAnswer): RecordFields | undefined {
  try {
    // Only the fields the bench reads; everything else in the body (the output) is dropped.
    const value = JSON.parse(answer.body) as RecordFields | null;
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes one request through its life: the POST, then (unless the answer was final) polls until
 * its record is final or the run's deadline aborts it. Writes only into the request log; the
 * record itself is dropped as soon as its times are copied out.
 */
export class PredictionClient {
  private readonly postPath: string;
  private readonly postHeaders: Record<string, string>;
  private readonly postTimeoutMs: number;

  constructor(
    private readonly o: {
      http: HttpClient;
      model: string;
      body: string;
      mode: ClientMode;
      wait_s: number;
      poll_ms: number;
      log: RequestLog;
      clock: () => number;
      signal: AbortSignal;
      observer: ClientObserver;
    },
  ) {
    this.postPath = `v1/models/${encodeURIComponent(o.model)}/predictions`;
    this.postHeaders = { prefer: o.mode === 'wait' ? `wait=${o.wait_s}` : 'respond-async' };
    // Past the held wait, an answer that still has not come is a hung connection, not a slow model.
    this.postTimeoutMs = (o.mode === 'wait' ? o.wait_s * 1000 : 0) + 30_000;
  }

  async send(i: number): Promise<void> {
    const { log, clock, observer } = this.o;
    log.sent[i] = clock();
    let answer: HttpAnswer;
    try {
      answer = await this.o.http.request('POST', this.postPath, {
        headers: this.postHeaders,
        body: this.o.body,
        timeoutMs: this.postTimeoutMs,
        signal: this.o.signal,
      });
    } catch (error) {
      log.answered[i] = clock();
      const code = error instanceof TransportError ? error.code : 'EIO';
      // Still unanswered when the run ended: it may or may not have been queued.
      log.setError(i, code === 'ABORTED' ? 'no_response' : code === 'TIMEOUT' ? 'timeout' : code);
      observer.answered(i);
      return;
    }
    log.answered[i] = clock();
    log.status[i] = answer.status;
    if (rejectionStatuses.has(answer.status)) {
      log.outcome[i] = Outcome.rejected;
      observer.answered(i);
      return;
    }
    if (answer.status !== 200 && answer.status !== 202) {
      log.setError(i, String(answer.status));
      observer.answered(i);
      return;
    }
    log.outcome[i] = Outcome.accepted;
    observer.answered(i);
    const record = parseRecord(answer);
    if (isFinal(record)) {
      this.finish(i, record);
      return;
    }
    const location = answer.headers.location;
    const id = record?.id ?? (typeof location === 'string' ? location.split('/').pop() : undefined);
    // Without an id there is nothing to poll: the request stays unfinished and counts as lost.
    if (id !== undefined && id !== '') await this.poll(i, id);
  }

  private async poll(i: number, id: string): Promise<void> {
    const path = `v1/predictions/${encodeURIComponent(id)}`;
    while (!this.o.signal.aborted) {
      try {
        await sleep(this.o.poll_ms, undefined, { signal: this.o.signal });
        const answer = await this.o.http.request('GET', path, { timeoutMs: 30_000, signal: this.o.signal });
        const record = answer.status === 200 ? parseRecord(answer) : undefined;
        if (isFinal(record)) {
          this.finish(i, record);
          return;
        }
      } catch {
        // A failed poll is retried at the next interval; only the deadline ends the wait.
      }
    }
  }

  private finish(i: number, record: RecordFields | undefined): void {
    const { log } = this.o;
    log.final[i] = this.o.clock();
    log.fate[i] = record?.status === 'succeeded' ? Fate.succeeded : Fate.failed;
    const m = record?.metrics;
    if (typeof m?.queue_ms === 'number') log.queueMs[i] = m.queue_ms;
    if (typeof m?.inference_ms === 'number') log.inferenceMs[i] = m.inference_ms;
    this.o.observer.finished(i);
  }
}
