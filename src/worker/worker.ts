import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Broker } from '../brokers/broker.js';
import { createInputValidator, type InputValidator } from '../models/input-validator.js';
import { prioritizedModels, type ModelSpec } from '../models/model-config.js';
import { envelopeVersion, type WorkerHeartbeat, type WorkerModelState } from '../protocol/envelope.js';
import { SpillwayError, describeError } from '../protocol/errors.js';
import type { Tracer } from '../observability/tracing.js';
import { priorityTier } from '../protocol/priority.js';
import { topicsFor, workerGroup, type LaneWeights, type Topics } from '../protocol/topics.js';
import { loadRuntime } from '../runtimes/load-runtime.js';
import type { ModelRuntime } from '../runtimes/runtime.js';
import { LazySubscription } from '../brokers/lazy-subscription.js';
import type { StreamReader } from '../brokers/stream-reader.js';
import { BatchRunner } from './batch-runner.js';
import { BusyMeter } from './busy-meter.js';
import { CanceledIds, startCancelReader } from './canceled-ids.js';
import { FairLanes, singleLane, type WorkSource } from './fair-lanes.js';
import { ModelConsumer } from './model-consumer.js';
import { SyncServer, type SyncModel } from './sync-server.js';

export interface WorkerOptions {
  readonly broker: Broker;
  readonly models: readonly ModelSpec[];
  readonly prefix: string;
  /** Tenants with a queue lane of their own (queuing: fair), read in weighted turns; default none. */
  readonly laneWeights?: LaneWeights;
  readonly logger: Logger;
  readonly workerId: string;
  /** Overrides every model's own concurrency when set. */
  readonly concurrency?: number;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  /** A batch still running after this long publishes `running`; quicker ones go straight to done. */
  readonly runningEventDelayMs: number;
  /** Where the endpoint for `dispatch: sync` models listens, and the URL gateways should use. */
  readonly syncListen: { readonly host: string; readonly port: number; readonly advertise?: string };
  /**
   * The deployment's shared secret (`worker.sync_secret`) that every call to that endpoint must
   * carry. Required when a model is `dispatch: sync`: start() refuses to open the endpoint without.
   */
  readonly syncSecret?: string;
  /**
   * Every model of the repository, served here or not: a pipeline step's output is checked
   * against the declared input of the next step's model before it is queued there.
   */
  readonly stepModels?: readonly ModelSpec[];
  /** Makes spans of every request this worker runs (docs/tracing.md); none when undefined. */
  readonly tracer?: Tracer | undefined;
}

type LoadedState = { state: 'ready'; dispatch: 'async' | 'sync'; concurrency: number; meter: BusyMeter; loadMs: number };
type ModelState = LoadedState | { state: 'failed'; error: string };

/** A serving node: loads its models, pulls their requests, and announces itself. */
export class Worker {
  private readonly consumers: ModelConsumer[] = [];
  private readonly runtimes: ModelRuntime[] = [];
  private readonly states: Record<string, ModelState> = {};
  private heartbeat: NodeJS.Timeout | undefined;
  private syncServer: SyncServer | undefined;
  private endpoint: string | undefined;
  private draining = false;
  private readonly canceled = new CanceledIds();
  private cancelReader: StreamReader | undefined;
  private readonly stepInputs = new Map<string, InputValidator>();

  constructor(private readonly o: WorkerOptions) {}

  /** The input check of a model a step hands over to, compiled the first time it is needed. */
  private readonly stepInput = (model: string): InputValidator | undefined => {
    const cached = this.stepInputs.get(model);
    if (cached !== undefined) return cached;
    const spec = (this.o.stepModels ?? this.o.models).find((m) => m.name === model);
    if (spec === undefined) return undefined;
    const validator = createInputValidator(spec);
    this.stepInputs.set(model, validator);
    return validator;
  };

  /** Loads every model; one that fails is reported and skipped while the others serve. */
  async start(): Promise<void> {
    const syncSecret = this.requireSyncSecret();
    // Every model a step may hand over to, so a next step's high request goes to its high topic.
    const topics = topicsFor(this.o.prefix, this.o.laneWeights, prioritizedModels(this.o.stepModels ?? this.o.models));
    const syncModels = new Map<string, SyncModel>();
    // Before any model takes work, so a request canceled while no worker ran is not started.
    this.cancelReader = await startCancelReader({
      broker: this.o.broker,
      topic: topics.control,
      workerId: this.o.workerId,
      canceled: this.canceled,
      logger: this.o.logger,
    });
    for (const spec of this.o.models) {
      let runtime: ModelRuntime;
      const loadStart = performance.now();
      try {
        runtime = await loadRuntime(spec);
      } catch (error) {
        const reason = describeError(error);
        this.states[spec.name] = { state: 'failed', error: reason };
        this.o.logger.error({ model: spec.name, err: error }, `model ${spec.name} failed to load: ${reason}`);
        continue;
      }
      const loadMs = Math.round(performance.now() - loadStart);
      this.runtimes.push(runtime);
      const concurrency = this.o.concurrency ?? spec.config.concurrency;
      const meter = new BusyMeter();
      this.states[spec.name] = { state: 'ready', dispatch: spec.config.dispatch, concurrency, meter, loadMs };
      if (spec.config.dispatch === 'sync') {
        syncModels.set(spec.name, { name: spec.name, runtime, concurrency, meter });
        this.o.logger.info({ model: spec.name, runtime: spec.config.runtime, load_ms: loadMs }, `serving model ${spec.name} (sync dispatch)`);
        continue;
      }
      const runner = new BatchRunner({
        spec,
        runtime,
        broker: this.o.broker,
        topics,
        workerId: this.o.workerId,
        logger: this.o.logger,
        runningEventDelayMs: this.o.runningEventDelayMs,
        canceled: this.canceled,
        stepInput: this.stepInput,
        tracer: this.o.tracer,
      });
      const consumer = new ModelConsumer({
        model: spec.name,
        source: this.workSource(topics, spec),
        runner,
        concurrency,
        maxBatchSize: spec.config.max_batch_size,
        batchWaitMs: spec.config.batch_wait_ms,
        meter,
        logger: this.o.logger,
      });
      consumer.start();
      this.consumers.push(consumer);
      this.o.logger.info({ model: spec.name, runtime: spec.config.runtime, load_ms: loadMs }, `serving model ${spec.name}`);
    }
    // The secret is always there when a sync model is (requireSyncSecret); the test narrows its type.
    if (syncModels.size > 0 && syncSecret !== undefined) {
      this.syncServer = new SyncServer(syncModels, this.o.logger, syncSecret);
      const { host, port, advertise } = this.o.syncListen;
      this.endpoint = await this.syncServer.listen(host, port, advertise);
      this.o.logger.info({ endpoint: this.endpoint }, 'listening for sync-dispatch requests');
    }
    await this.announce();
    this.heartbeat = setInterval(() => void this.announce(), this.o.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Before anything starts: an endpoint without a secret would run any caller's request. */
  /** A model's requests: its one topic, or its lanes taken by priority tier and in weighted turns within one. */
  private workSource(topics: Topics, spec: ModelSpec): WorkSource {
    const subscribe = (topic: string) => new LazySubscription(this.o.broker, { topic, group: workerGroup, leaseMs: this.o.leaseMs });
    const lanes = topics.lanes(spec.name);
    if (lanes.length === 1) return singleLane(subscribe(topics.requests(spec.name)));
    return new FairLanes(
      lanes.map((lane) => ({
        name: `${lane.tenant ?? 'shared'}${lane.priority === 'normal' ? '' : ` (${lane.priority})`}`,
        weight: lane.weight,
        tier: priorityTier(lane.priority),
        subscription: subscribe(lane.topic),
      })),
      { agingTakes: spec.config.priority_aging_takes },
    );
  }

  private requireSyncSecret(): string | undefined {
    const sync = this.o.models.filter((m) => m.config.dispatch === 'sync').map((m) => m.name);
    if (sync.length === 0 || this.o.syncSecret !== undefined) return this.o.syncSecret;
    const message =
      `this worker serves dispatch: sync models (${sync.join(', ')}) and has no sync secret: set worker.sync_secret ` +
      '(environment SPILLWAY_WORKER_SYNC_SECRET, flag --sync-secret) to the secret its gateways have, at least 16 characters';
    throw new SpillwayError('SPILLWAY_INVALID_CONFIG', message, { details: [{ pointer: 'worker.sync_secret', message }] });
  }

  get inFlight(): number {
    return this.consumers.reduce((n, c) => n + c.inFlight, this.syncServer?.inFlight ?? 0);
  }

  /** SIGTERM: stop taking, finish and ack what is in flight, release the models. */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    await this.announce();
    await Promise.all([...this.consumers.map((c) => c.drain()), this.syncServer?.close()]);
    clearInterval(this.heartbeat);
    await this.cancelReader?.stop();
    await Promise.all(this.runtimes.map((r) => r.close().catch(() => undefined)));
  }

  private async announce(): Promise<void> {
    const beat: WorkerHeartbeat = {
      v: envelopeVersion,
      worker: this.o.workerId,
      host: hostname(),
      pid: process.pid,
      sent_at: new Date().toISOString(),
      models: Object.fromEntries(Object.entries(this.states).map(([name, s]) => [name, describeState(s)])),
      in_flight: this.inFlight,
      draining: this.draining,
      ...(this.endpoint === undefined ? {} : { endpoint: this.endpoint }),
    };
    const topic = topicsFor(this.o.prefix).workers;
    try {
      // Heartbeats matter only while fresh; old ones must not pile up when no gateway reads them.
      await this.o.broker.ensureTopic(topic, { retentionMs: Math.max(60_000, this.o.heartbeatMs * 10) });
      await this.o.broker.publish(topic, [{ key: this.o.workerId, value: JSON.stringify(beat) }]);
    } catch (error) {
      this.o.logger.warn({ err: error }, 'could not publish heartbeat');
    }
  }
}

function describeState(s: ModelState): WorkerModelState {
  if (s.state === 'failed') return s;
  return { state: 'ready', dispatch: s.dispatch, concurrency: s.concurrency, busy_ms: s.meter.totalMs, load_ms: s.loadMs };
}
