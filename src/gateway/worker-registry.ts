import type { Logger } from 'pino';
import type { Broker } from '../brokers/broker.js';
import { StreamFollower } from '../brokers/stream-reader.js';
import type { ModelLoadTime } from '../observability/metrics.js';
import type { WorkerHeartbeat } from '../protocol/envelope.js';
import { workerRegistryGroup } from '../protocol/topics.js';
import { withoutUndefined } from '../protocol/without-undefined.js';

export interface WorkerSighting {
  readonly worker: string;
  readonly host: string;
  readonly pid: number;
  readonly last_seen: string;
  readonly in_flight: number;
  readonly draining: boolean;
  readonly state: 'ready' | 'failed';
  readonly error?: string;
  readonly dispatch?: 'async' | 'sync';
  readonly concurrency?: number;
  readonly busy_ms?: number;
  readonly load_ms?: number;
  readonly endpoint?: string;
}

/** Which workers have announced themselves recently, and in what state each holds each model. */
export class WorkerRegistry {
  private readonly beats = new Map<string, WorkerHeartbeat>();
  private follower: StreamFollower | undefined;

  constructor(private readonly staleAfterMs: number) {}

  async start(broker: Broker, topic: string, logger: Logger): Promise<void> {
    // Ephemeral and from the start of the (short-retention) topic: a new gateway learns the
    // current workers at once instead of after the next heartbeat.
    this.follower = new StreamFollower({
      broker,
      topic,
      group: workerRegistryGroup(),
      from: 'earliest',
      name: 'worker registry',
      logger,
      onValue: (value) => {
        try {
          this.record(JSON.parse(value) as WorkerHeartbeat);
        } catch {
          // Not a heartbeat: ignore it, the topic is informational.
        }
      },
    });
    await this.follower.start();
  }

  async stop(): Promise<void> {
    await this.follower?.stop();
  }

  record(beat: WorkerHeartbeat): void {
    if (typeof beat.worker !== 'string' || typeof beat.models !== 'object') return;
    const known = this.beats.get(beat.worker);
    if (known === undefined || known.sent_at <= beat.sent_at) this.beats.set(beat.worker, beat);
  }

  /** Workers seen within the staleness window that serve (or failed to load) `model`. */
  workersFor(model: string, now = Date.now()): WorkerSighting[] {
    const out: WorkerSighting[] = [];
    for (const beat of this.beats.values()) {
      const state = beat.models[model];
      if (state === undefined || !this.isFresh(beat, now)) continue;
      out.push(
        withoutUndefined({
          worker: beat.worker,
          host: beat.host,
          pid: beat.pid,
          last_seen: beat.sent_at,
          in_flight: beat.in_flight,
          draining: beat.draining,
          state: state.state,
          error: state.error,
          dispatch: state.dispatch,
          concurrency: state.concurrency,
          busy_ms: state.busy_ms,
          load_ms: state.load_ms,
          endpoint: beat.endpoint,
        }),
      );

    }
    return out;
  }

  /** How long each model took to load on each recently seen worker that loaded it. */
  loadTimes(now = Date.now()): ModelLoadTime[] {
    const out: ModelLoadTime[] = [];
    for (const beat of this.beats.values()) {
      if (!this.isFresh(beat, now)) continue;
      for (const [model, state] of Object.entries(beat.models)) {
        if (state.load_ms !== undefined) out.push({ model, worker: beat.worker, load_ms: state.load_ms });
      }
    }
    return out;
  }

  private isFresh(beat: WorkerHeartbeat, now: number): boolean {
    return now - Date.parse(beat.sent_at) <= this.staleAfterMs;
  }
}
