import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Broker } from '../../brokers/broker.js';
import { StreamFollower } from '../../brokers/stream-reader.js';
import { decodeRecord } from '../../protocol/decode-record.js';
import { isTerminal, type PredictionRecord, type PredictionStatus } from '../../protocol/prediction.js';

/** The longest span latency quantiles may be asked over, and so how long outcomes are kept. */
export const maxOutcomeWindowS = 300;
/** Outcomes kept per model at most, whatever the window: bounds memory under heavy load. */
const maxOutcomesPerModel = 20_000;
/** Failures listed per model, newest first. */
const maxFailuresPerModel = 10;

interface Outcome {
  readonly at: number;
  readonly queueMs: number | undefined;
  readonly inferenceMs: number | undefined;
  readonly totalMs: number | undefined;
}

/** A prediction that ended without a result, as the dashboard lists it. */
export interface RecentFailure {
  readonly id: string;
  readonly status: PredictionStatus;
  readonly code: string | undefined;
  readonly message: string | undefined;
  readonly completed_at: string | undefined;
}

interface ModelOutcomes {
  /** Oldest first; `at` is when this reader saw the record. */
  readonly outcomes: Outcome[];
  readonly failures: RecentFailure[];
  total: number;
  byStatus: Record<string, number>;
}

export interface Quantiles {
  readonly count: number;
  readonly p50: number | null;
  readonly p99: number | null;
}

export interface OutcomeSummary {
  /** Final records seen since this reader started. */
  readonly total: number;
  readonly by_status: Readonly<Record<string, number>>;
  readonly queue_ms: Quantiles;
  readonly inference_ms: Quantiles;
  readonly total_ms: Quantiles;
  readonly failures: readonly RecentFailure[];
}

/**
 * The final records of every model as the whole deployment produces them, kept for a few minutes:
 * it reads the response stream in an ephemeral group of its own (as the scaling signals'
 * completion meter does), so each worker's results count here, whichever gateway answered the
 * client. Latency quantiles therefore describe the deployment, not this gateway's share of it.
 * It starts on first use; a gateway whose dashboard nobody opens reads nothing.
 */
export class RecentOutcomes {
  private readonly models = new Map<string, ModelOutcomes>();
  private readonly follower: StreamFollower;
  private readonly now: () => number;

  constructor(
    o: { readonly broker: Broker; readonly responsesTopic: string; readonly logger: Logger; readonly now?: () => number },
  ) {
    this.now = o.now ?? Date.now;
    this.follower = new StreamFollower({
      broker: o.broker,
      topic: o.responsesTopic,
      group: `dashboard.${randomUUID()}`,
      from: 'latest',
      name: 'dashboard outcomes',
      logger: o.logger,
      onValue: (value) => {
        const record = decodeRecord(value);
        if (record !== undefined && isTerminal(record.status)) this.add(record);
      },
      awaitSubscribed: true,
    });
  }

  start(): Promise<void> {
    return this.follower.start();
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }

  add(record: PredictionRecord): void {
    const m = this.state(record.model);
    const at = this.now();
    m.total++;
    m.byStatus[record.status] = (m.byStatus[record.status] ?? 0) + 1;
    m.outcomes.push({ at, queueMs: record.metrics.queue_ms, inferenceMs: record.metrics.inference_ms, totalMs: record.metrics.total_ms });
    while (m.outcomes.length > maxOutcomesPerModel || (m.outcomes.length > 0 && m.outcomes[0]!.at < at - maxOutcomeWindowS * 1000)) m.outcomes.shift();
    if (record.status === 'failed' || record.status === 'expired') {
      m.failures.unshift({ id: record.id, status: record.status, code: record.error?.code, message: record.error?.message, completed_at: record.completed_at });
      m.failures.length = Math.min(m.failures.length, maxFailuresPerModel);
    }
  }

  /** `model`'s outcomes, with latency quantiles over the final records of the last `windowS` seconds. */
  summary(model: string, windowS: number): OutcomeSummary {
    const m = this.state(model);
    const since = this.now() - windowS * 1000;
    const recent = m.outcomes.filter((o) => o.at >= since);
    return {
      total: m.total,
      by_status: { ...m.byStatus },
      queue_ms: quantiles(recent.map((o) => o.queueMs)),
      inference_ms: quantiles(recent.map((o) => o.inferenceMs)),
      total_ms: quantiles(recent.map((o) => o.totalMs)),
      failures: [...m.failures],
    };
  }

  private state(model: string): ModelOutcomes {
    let m = this.models.get(model);
    if (m === undefined) {
      m = { outcomes: [], failures: [], total: 0, byStatus: {} };
      this.models.set(model, m);
    }
    return m;
  }
}

/** Nearest-rank p50 and p99 of the values present (a canceled or expired record has no inference time). */
export function quantiles(values: readonly (number | undefined)[]): Quantiles {
  const sorted = values.filter((v): v is number => v !== undefined && Number.isFinite(v)).sort((a, b) => a - b);
  const rank = (q: number) => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
  return { count: sorted.length, p50: rank(0.5), p99: rank(0.99) };
}
