import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PredictionRecord, StepTimings } from '../protocol/prediction.js';

/** Buckets in seconds from 1 ms to 5 min: wide enough for queue waits during a spike. */
const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** The `step` label of each step of serving, and the record field that times it. */
const stepFields = [
  ['decode', 'decode_ms'],
  ['preprocess', 'preprocess_ms'],
  ['inference', 'inference_ms'],
  ['postprocess', 'postprocess_ms'],
] as const satisfies readonly (readonly [string, keyof StepTimings])[];

type Step = (typeof stepFields)[number][0];

/** One model's children of the latency histograms. */
interface ModelHistograms {
  readonly total: Observer;
  readonly queueWait: Observer;
  readonly inference: Observer;
  readonly steps: Readonly<Record<Step, Observer>>;
}
interface Observer {
  observe(seconds: number): void;
}

export interface GatewayMetrics {
  readonly registry: Registry;
  /** An HTTP prediction request was answered: accepted (200/202) or refused with a code. */
  requestAnswered(model: string, code: number): void;
  /** A request to a route that needs a key (or would, with keys in use) was answered for `tenant`. */
  tenantRequestAnswered(tenant: string, code: number): void;
  /**
   * A terminal record was written to the result store: called by whoever wrote it (the store
   * writer, a cancel, an expiry), so once per prediction however often its record is published.
   */
  predictionFinished(record: PredictionRecord): void;
}

/** One model's load time on one worker, as its heartbeat reports it. */
export interface ModelLoadTime {
  readonly model: string;
  readonly worker: string;
  readonly load_ms: number;
}

export interface GatewayMetricSources {
  /** Requests waiting or running, per model. */
  queueDepth(): Promise<ReadonlyMap<string, number>>;
  /** Model load times the workers' recent heartbeats report. */
  modelLoadTimes(): readonly ModelLoadTime[];
  /** Every model's scaling signals, for the deployment as a whole; no gauges without it. */
  readonly scaling?: () => Promise<readonly ModelScalingFigures[]>;
  /**
   * Tenants that get a metrics label of their own (the configured ones); every other tenant is
   * counted as `other`, so a stream of new tenants cannot grow the series without bound.
   */
  readonly tenants?: readonly string[];
}

/** One model's scaling signals, as the gauges show them (the gateway's scaling route has the rest). */
export interface ModelScalingFigures {
  readonly model: string;
  readonly backlog: number;
  readonly in_flight: number;
  readonly oldest_age_s: number;
  readonly drain_rate_per_s: number;
  readonly arrival_rate_per_s: number;
  readonly workers_seen: number;
  readonly desired_workers: number;
}

/** Records made without API keys are the default tenant's. */
const defaultTenantLabel = 'default';

export function createGatewayMetrics(sources: GatewayMetricSources): GatewayMetrics {
  const registry = new Registry();
  // The default metrics' names already start with process_ or nodejs_.
  collectDefaultMetrics({ register: registry, prefix: 'spillway_' });
  const requests = new Counter({
    name: 'spillway_requests_total',
    help: 'Prediction requests answered by this gateway, by model and HTTP status code',
    labelNames: ['model', 'code'],
    registers: [registry],
  });
  const predictions = new Counter({
    name: 'spillway_predictions_total',
    help: 'Predictions that reached a final status, by model and status',
    labelNames: ['model', 'status'],
    registers: [registry],
  });
  const tenantRequests = new Counter({
    name: 'spillway_tenant_requests_total',
    help: 'Requests to the prediction and model routes answered by this gateway, by tenant (configured ones, else "other") and HTTP status code',
    labelNames: ['tenant', 'code'],
    registers: [registry],
  });
  const tenantPredictions = new Counter({
    name: 'spillway_tenant_predictions_total',
    help: 'Predictions that reached a final status, by tenant (configured ones, else "other") and status',
    labelNames: ['tenant', 'status'],
    registers: [registry],
  });
  const known = new Set([defaultTenantLabel, ...(sources.tenants ?? [])]);
  const tenantLabel = (tenant: string | undefined) => (tenant === undefined ? defaultTenantLabel : known.has(tenant) ? tenant : 'other');
  const histogram = (name: string, help: string) =>
    new Histogram({ name, help, labelNames: ['model'], buckets: latencyBuckets, registers: [registry] });
  const total = histogram('spillway_prediction_duration_seconds', 'From acceptance to completion');
  const queueWait = histogram('spillway_queue_wait_seconds', 'From acceptance to the start of the final attempt');
  // The model's own run for the batch, as inference_ms is; the step histogram has it too, but dashboards read this name.
  const inference = histogram('spillway_inference_duration_seconds', "The model's own run for the batch that held the prediction");
  const steps = new Histogram({
    name: 'spillway_step_duration_seconds',
    help: 'Each step of serving (decode, preprocess, inference, postprocess) for the batch that held the prediction, observed once per finished prediction; a step the model lacks is not observed',
    labelNames: ['model', 'step'],
    buckets: latencyBuckets,
    registers: [registry],
  });
  new Gauge({
    name: 'spillway_queue_depth',
    help: 'Requests waiting or running, per model, on the request topic',
    labelNames: ['model'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [model, depth] of await sources.queueDepth()) this.set({ model }, depth);
    },
  });
  new Gauge({
    name: 'spillway_model_load_seconds',
    help: 'How long loading the model took on each worker seen recently, from its heartbeats',
    labelNames: ['model', 'worker'],
    registers: [registry],
    collect() {
      // Rebuilt from the heartbeats on each scrape, so a worker that has gone drops out.
      this.reset();
      for (const t of sources.modelLoadTimes()) this.set({ model: t.model, worker: t.worker }, t.load_ms / 1000);
    },
  });
  if (sources.scaling !== undefined) scalingGauges(registry, sources.scaling);
  // Each finished prediction is observed up to seven times; the children are looked up once per
  // model, not by hashing the labels on every observation.
  const children = new Map<string, ModelHistograms>();
  const histogramsOf = (model: string): ModelHistograms => {
    let of = children.get(model);
    if (of === undefined) {
      const byStep = (step: string) => steps.labels({ model, step });
      of = {
        total: total.labels({ model }),
        queueWait: queueWait.labels({ model }),
        inference: inference.labels({ model }),
        steps: { decode: byStep('decode'), preprocess: byStep('preprocess'), inference: byStep('inference'), postprocess: byStep('postprocess') },
      };
      children.set(model, of);
    }
    return of;
  };
  return {
    registry,
    requestAnswered: (model, code) => requests.inc({ model, code: String(code) }),
    tenantRequestAnswered: (tenant, code) => tenantRequests.inc({ tenant: tenantLabel(tenant), code: String(code) }),
    predictionFinished: (record) => {
      predictions.inc({ model: record.model, status: record.status });
      tenantPredictions.inc({ tenant: tenantLabel(record.tenant), status: record.status });
      const m = record.metrics;
      const of = histogramsOf(record.model);
      if (m.total_ms !== undefined) of.total.observe(m.total_ms / 1000);
      if (m.queue_ms !== undefined) of.queueWait.observe(m.queue_ms / 1000);
      if (m.inference_ms !== undefined) of.inference.observe(m.inference_ms / 1000);
      for (const [step, field] of stepFields) {
        const ms = m[field];
        if (ms !== undefined) of.steps[step].observe(ms / 1000);
      }
    },  };
}

/** How long one reading of the scaling signals serves the gauges of one scrape. */
const scalingReadingMs = 500;

const scalingGaugeFields = [
  ['spillway_queue_ready', 'backlog', 'Requests waiting for a worker (not leased), per model, summed over its lanes, for the whole deployment'],
  ['spillway_queue_in_flight', 'in_flight', 'Requests a worker holds and has not finished, per model'],
  ['spillway_queue_oldest_age_seconds', 'oldest_age_s', 'Age of the oldest waiting request, per model (0 when none waits)'],
  ['spillway_drain_rate', 'drain_rate_per_s', 'Final records per second over the last 30 s, per model, from the response stream'],
  ['spillway_arrival_rate', 'arrival_rate_per_s', 'Requests queued per second over the last 30 s, per model'],
  ['spillway_workers_seen', 'workers_seen', 'Workers serving the model with fresh heartbeats, ready and not draining'],
  ['spillway_desired_workers', 'desired_workers', 'Workers that would clear the backlog within 60 s at the measured rates (GET /v1/models/{model}/scaling takes any target)'],
] as const satisfies readonly (readonly [string, keyof ModelScalingFigures, string])[];

/** One gauge per figure; a scrape reads the signals once for all of them. */
function scalingGauges(registry: Registry, read: () => Promise<readonly ModelScalingFigures[]>): void {
  let reading: { at: number; figures: Promise<readonly ModelScalingFigures[]> } | undefined;
  const current = () => {
    if (reading === undefined || Date.now() - reading.at > scalingReadingMs) reading = { at: Date.now(), figures: read() };
    return reading.figures;
  };
  for (const [name, field, help] of scalingGaugeFields) {
    new Gauge({
      name,
      help,
      labelNames: ['model'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const f of await current()) this.set({ model: f.model }, f[field]);
      },
    });
  }
}
