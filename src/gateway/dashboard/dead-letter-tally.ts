import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Broker } from '../../brokers/broker.js';
import { StreamFollower } from '../../brokers/stream-reader.js';
import { decodeRequest } from '../../protocol/decode.js';

/** Letters listed per model, newest first. */
const maxListed = 10;

/** A dead letter as the dashboard lists it: enough to find its prediction. */
export interface ListedDeadLetter {
  readonly id: string | undefined;
  readonly code: string | undefined;
  readonly failed_at: string | undefined;
}

export interface DeadLetterCounts {
  /** Request letters on the topic for the model (replayed ones too: `spillway dlq list` tells them apart). */
  readonly total: number;
  readonly recent: readonly ListedDeadLetter[];
}

/**
 * The dead letters on `<prefix>.dlq`, per model, read from the topic's start in an ephemeral
 * group of its own and followed from then on: the topic is the deployment's one record of them,
 * whichever worker wrote them. Webhooks that were never delivered are counted apart, since a
 * callback letter names its prediction but not its model. `spillway dlq` stays the tool to act on
 * them; this only counts.
 */
export class DeadLetterTally {
  private readonly byModel = new Map<string, { total: number; recent: ListedDeadLetter[] }>();
  private callbackLetters = 0;
  private readonly follower: StreamFollower;
  private started: Promise<void> | undefined;

  constructor(private readonly o: { readonly broker: Broker; readonly dlqTopic: string; readonly logger: Logger }) {
    this.follower = new StreamFollower({
      broker: o.broker,
      topic: o.dlqTopic,
      group: `dashboard.dlq.${randomUUID()}`,
      from: 'earliest',
      name: 'dashboard dead letters',
      logger: o.logger,
      onValue: (value) => this.add(value),
      awaitSubscribed: true,
    });
  }

  start(): Promise<void> {
    this.started ??= (async () => {
      await this.o.broker.ensureTopic(this.o.dlqTopic);
      await this.follower.start();
    })().catch((error: unknown) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }

  add(value: string): void {
    let letter: { kind?: unknown; value?: unknown; reason?: { code?: unknown }; failed_at?: unknown };
    try {
      letter = JSON.parse(value) as typeof letter;
    } catch {
      return;
    }
    if (typeof letter !== 'object' || letter === null) return;
    if (letter.kind === 'callback') {
      this.callbackLetters++;
      return;
    }
    if (typeof letter.value !== 'string') return;
    const decoded = decodeRequest(letter.value);
    if (!decoded.ok) return;
    let m = this.byModel.get(decoded.value.model);
    if (m === undefined) {
      m = { total: 0, recent: [] };
      this.byModel.set(decoded.value.model, m);
    }
    m.total++;
    const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
    m.recent.unshift({ id: decoded.value.id, code: text(letter.reason?.code), failed_at: text(letter.failed_at) });
    m.recent.length = Math.min(m.recent.length, maxListed);
  }

  forModel(model: string): DeadLetterCounts {
    const m = this.byModel.get(model);
    return { total: m?.total ?? 0, recent: [...(m?.recent ?? [])] };
  }

  /** Webhooks the dispatcher gave up on, for every model. */
  callbacks(): number {
    return this.callbackLetters;
  }
}
