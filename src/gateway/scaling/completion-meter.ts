import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Broker } from '../../brokers/broker.js';
import { StreamFollower } from '../../brokers/stream-reader.js';
import { isTerminal, type PredictionStatus } from '../../protocol/prediction.js';

/**
 * Final records per model, as the whole deployment produces them: it reads the response stream
 * in an ephemeral group of its own, from the moment it starts, so every worker's results count
 * here whichever gateway's store writer takes them. A record published twice for one id (a
 * cancel racing a result) counts twice; that is rare and only nudges a rate.
 */
export class CompletionMeter {
  private readonly totals = new Map<string, number>();
  private readonly follower: StreamFollower;

  constructor(broker: Broker, responsesTopic: string, logger: Logger) {
    this.follower = new StreamFollower({
      broker,
      topic: responsesTopic,
      group: `scaling.${randomUUID()}`,
      from: 'latest',
      name: 'completion meter',
      logger,
      onValue: (value) => this.count(value),
      awaitSubscribed: true,
    });
  }

  start(): Promise<void> {
    return this.follower.start();
  }

  /** Final records of `model` seen since start. */
  total(model: string): number {
    return this.totals.get(model) ?? 0;
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }

  private count(value: string): void {
    let record: { model?: unknown; status?: unknown };
    try {
      record = JSON.parse(value) as typeof record;
    } catch {
      return;
    }
    if (typeof record.model !== 'string' || typeof record.status !== 'string') return;
    if (isTerminal(record.status as PredictionStatus)) this.totals.set(record.model, this.total(record.model) + 1);
  }
}
