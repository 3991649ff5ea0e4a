/**
 * `spillway plan`: from a load, a service time and targets, the workers a synchronous
 * deployment needs (sized for the peak, Erlang B) and the workers Spillway needs (sized for
 * the average, with a queue that absorbs the spike). Pure: numbers in, a plan out.
 *
 * A worker is one serving slot: one model replica that runs one batch at a time. A batch of b
 * requests takes S(b) = service_ms + b × per_item_ms.
 */
import { burst, capacityToDrain } from './fluid.js';
import { erlangB, erlangBServersFor, mdcWaitBest } from './queueing.js';

/** Past this, the search gives up and calls the target unreachable. */
export const MAX_WORKERS = 1_000_000;
/** The latency percentile the target applies to. */
const PERCENTILE = 0.99;

export interface PlanInputs {
  /** Average arrival rate, requests per second (> 0). */
  readonly rate: number;
  /** A spike of `rate` requests per second lasting `forS` seconds, in place of the average. */
  readonly spike?: { readonly rate: number; readonly forS: number };
  /** Fixed time of one batch, ms. */
  readonly serviceMs: number;
  /** Extra time per request in a batch, ms. */
  readonly perItemMs: number;
  /** Largest batch a worker runs (1: no batching). */
  readonly batch: number;
  /** Target p99 latency (wait + service) at the average rate, ms. */
  readonly p99Ms: number;
  /** Target time to drain a spike's backlog after the spike ends, s. */
  readonly catchUpS: number;
  /** Blocking probability that counts as "rejects nothing" for the synchronous deployment. */
  readonly syncLoss: number;
  /** Slots per worker process, to turn workers into processes. */
  readonly concurrency: number;
  /** Evaluate this many async workers instead of searching for the least. */
  readonly workers?: number;
  /** Where the service time came from, echoed only. */
  readonly serviceFrom?: string;
}

export type Constraint = 'utilization' | 'p99' | 'catch_up';

export interface SyncPlan {
  readonly workers: number | null;
  readonly processes: number | null;
  readonly peak_rate: number;
  readonly offered_load_erlangs: number;
  readonly blocking_at_peak: number | null;
  readonly blocking_at_average: number | null;
  readonly utilization_at_average: number | null;
  readonly latency_ms: number;
}

export interface AsyncPlan {
  readonly workers: number | null;
  /** The least count meeting every target (equal to `workers` unless --workers was given). */
  readonly workers_needed: number | null;
  readonly processes: number | null;
  /** The targets that set `workers_needed`. */
  readonly limited_by: readonly Constraint[];
  /** Requests per second with full batches. */
  readonly capacity_rps: number | null;
  /** Average rate ÷ capacity. */
  readonly utilization: number | null;
  /** Batch size the latency figures assume at the average rate. */
  readonly effective_batch: number | null;
  readonly mean_wait_ms: number | null;
  readonly p99_wait_ms: number | null;
  readonly p99_latency_ms: number | null;
  readonly latency_model: string;
  readonly backlog_peak: number | null;
  readonly drain_s: number | null;
  /** Wait of the request arriving as the spike ends. */
  readonly max_wait_s: number | null;
  /** Mean wait of the requests arriving during the spike (fluid model). */
  readonly spike_mean_wait_s: number | null;
  /** What a deployment with this many workers and no queue would turn away at the peak. */
  readonly blocking_at_peak_without_queue: number | null;
}

export interface Plan {
  readonly inputs: {
    readonly rate: number;
    readonly spike_rate: number | null;
    readonly spike_for_s: number | null;
    readonly service_ms: number;
    readonly per_item_ms: number;
    readonly batch: number;
    readonly p99_ms: number;
    readonly catch_up_s: number;
    readonly sync_loss: number;
    readonly concurrency: number;
    readonly workers: number | null;
    readonly service_from: string | null;
  };
  readonly service: {
    /** S(1), ms. */
    readonly single_ms: number;
    /** S(batch), ms. */
    readonly full_batch_ms: number;
    /** One worker's throughput with full batches, requests per second. */
    readonly worker_capacity_rps: number;
  };
  readonly sync: SyncPlan;
  readonly async: AsyncPlan;
  /** Worker-hours of sync ÷ async, both provisioned all the time. */
  readonly cost_ratio: number | null;
  readonly assumptions: readonly string[];
  readonly feasible: boolean;
  readonly reason?: string;
}

/** How the latency figures were computed; the exact one unless it would take too long. */
export const LATENCY_MODELS = {
  exact: 'M/D/c, exact (Crommelin: the queue seen every S(b))',
  approximate: 'M/D/c, heavy-traffic approximation (M/M/c Erlang C tail x (1+Cs^2)/2, Cs=0: Allen-Cunneen/Kingman)',
} as const;

/** The service time of a batch of b requests, ms. */
export function batchMs(inputs: Pick<PlanInputs, 'serviceMs' | 'perItemMs'>, b: number): number {
  return inputs.serviceMs + b * inputs.perItemMs;
}

/** Figures of the async deployment with `workers` workers at the average rate. */
interface AsyncFigures {
  readonly capacity: number;
  readonly utilization: number;
  readonly latency?: {
    readonly batch: number;
    readonly meanWaitMs: number;
    readonly p99WaitMs: number;
    readonly p99LatencyMs: number;
    readonly exact: boolean;
  };
  readonly backlogPeak: number;
  readonly drainS: number;
  readonly maxWaitS: number;
  readonly spikeMeanWaitS: number;
}

export function makePlan(inputs: PlanInputs): Plan {
  const single = batchMs(inputs, 1);
  const fullBatch = batchMs(inputs, inputs.batch);
  const perWorker = (inputs.batch * 1000) / fullBatch;
  const peakRate = inputs.spike?.rate ?? inputs.rate;
  const reasons: string[] = [];

  const sync = syncPlan(inputs, single, peakRate);
  if (sync.workers === null) reasons.push(`a synchronous deployment would need more than ${MAX_WORKERS} workers`);

  const needed = workersNeeded(inputs, perWorker, single);
  if ('reason' in needed && inputs.workers === undefined) reasons.push(needed.reason);
  const workers = inputs.workers ?? ('workers' in needed ? needed.workers : undefined);
  const figures = workers === undefined ? undefined : asyncFigures(inputs, workers, perWorker);
  if (inputs.workers !== undefined && figures !== undefined) {
    reasons.push(...shortfalls(inputs, inputs.workers, figures, needed));
  }

  const asyncPart: AsyncPlan = {
    workers: workers ?? null,
    workers_needed: 'workers' in needed ? needed.workers : null,
    processes: workers === undefined ? null : Math.ceil(workers / inputs.concurrency),
    limited_by: 'workers' in needed ? needed.limitedBy : [],
    capacity_rps: figures?.capacity ?? null,
    utilization: figures?.utilization ?? null,
    effective_batch: figures?.latency?.batch ?? null,
    mean_wait_ms: figures?.latency?.meanWaitMs ?? null,
    p99_wait_ms: figures?.latency?.p99WaitMs ?? null,
    p99_latency_ms: figures?.latency?.p99LatencyMs ?? null,
    latency_model: LATENCY_MODELS[figures?.latency?.exact === false ? 'approximate' : 'exact'],
    backlog_peak: figures?.backlogPeak ?? null,
    drain_s: finite(figures?.drainS),
    max_wait_s: finite(figures?.maxWaitS),
    spike_mean_wait_s: finite(figures?.spikeMeanWaitS),
    blocking_at_peak_without_queue: workers === undefined ? null : erlangB((peakRate * single) / 1000, workers),
  };

  const plan: Plan = {
    inputs: {
      rate: inputs.rate,
      spike_rate: inputs.spike?.rate ?? null,
      spike_for_s: inputs.spike?.forS ?? null,
      service_ms: inputs.serviceMs,
      per_item_ms: inputs.perItemMs,
      batch: inputs.batch,
      p99_ms: inputs.p99Ms,
      catch_up_s: inputs.catchUpS,
      sync_loss: inputs.syncLoss,
      concurrency: inputs.concurrency,
      workers: inputs.workers ?? null,
      service_from: inputs.serviceFrom ?? null,
    },
    service: { single_ms: single, full_batch_ms: fullBatch, worker_capacity_rps: perWorker },
    sync,
    async: asyncPart,
    cost_ratio: sync.workers !== null && workers !== undefined ? sync.workers / workers : null,
    assumptions: assumptions(inputs, single, peakRate, asyncPart),
    feasible: reasons.length === 0,
    ...(reasons.length > 0 ? { reason: reasons.join('; ') } : {}),
  };
  return plan;
}

function syncPlan(inputs: PlanInputs, single: number, peakRate: number): SyncPlan {
  const atPeak = (peakRate * single) / 1000;
  const atAverage = (inputs.rate * single) / 1000;
  const found = erlangBServersFor(atPeak, inputs.syncLoss, MAX_WORKERS);
  return {
    workers: found?.servers ?? null,
    processes: found === undefined ? null : Math.ceil(found.servers / inputs.concurrency),
    peak_rate: peakRate,
    offered_load_erlangs: atPeak,
    blocking_at_peak: found?.blocking ?? null,
    blocking_at_average: found === undefined ? null : erlangB(atAverage, found.servers),
    // Carried load per worker: only accepted requests occupy a worker.
    utilization_at_average: found === undefined ? null : (atAverage * (1 - erlangB(atAverage, found.servers))) / found.servers,
    latency_ms: single,
  };
}

type Needed = { readonly workers: number; readonly limitedBy: readonly Constraint[] } | { readonly reason: string };

/** The least async worker count meeting every target, or why there is none. */
function workersNeeded(inputs: PlanInputs, perWorker: number, single: number): Needed {
  if (inputs.p99Ms < single) {
    return { reason: `the p99 target (${inputs.p99Ms} ms) is below the service time of one request (S(1) = ${single} ms): no number of workers meets it` };
  }
  const byUtilization = Math.max(1, Math.floor(inputs.rate / perWorker) + 1);
  // Without a spike above the average there is no backlog to drain: catch-up sets no floor.
  const spike = inputs.spike;
  const drainFloor = spike === undefined || spike.rate <= inputs.rate ? 0 : capacityToDrain(inputs.rate, spike.rate, spike.forS, inputs.catchUpS) / perWorker;
  // The tolerance keeps float noise in an exact case (5.000000000001 workers) from adding one.
  const byCatchUp = drainFloor === 0 ? 0 : Math.max(1, Math.ceil(drainFloor - 1e-9 * Math.max(1, drainFloor)));
  const byP99 = leastMeeting(byUtilization, (c) => {
    const latency = asyncFigures(inputs, c, perWorker).latency;
    return latency !== undefined && latency.p99LatencyMs <= inputs.p99Ms;
  });
  if (byP99 === undefined) return { reason: `the p99 target (${inputs.p99Ms} ms) needs more than ${MAX_WORKERS} workers` };
  const workers = Math.max(byUtilization, byCatchUp, byP99);
  const limitedBy = (
    [
      ['utilization', byUtilization],
      // The p99 search starts at the utilization floor, so it limits only when it asks for more.
      ['p99', byP99 > byUtilization ? byP99 : 0],
      ['catch_up', byCatchUp],
    ] as const
  )
    .filter(([, c]) => c === workers)
    .map(([name]) => name);
  return { workers, limitedBy };
}

/** The least c ≥ from with meets(c), for meets monotone in c; undefined past MAX_WORKERS. */
function leastMeeting(from: number, meets: (c: number) => boolean): number | undefined {
  if (from > MAX_WORKERS) return undefined;
  if (meets(from)) return from;
  let low = from;
  let high = from;
  for (;;) {
    low = high;
    high = Math.min(MAX_WORKERS, high * 2);
    if (meets(high)) break;
    if (high === MAX_WORKERS) return undefined;
  }
  // meets(high) and not meets(low): bisect.
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (meets(mid)) high = mid;
    else low = mid;
  }
  return high;
}

function asyncFigures(inputs: PlanInputs, workers: number, perWorker: number): AsyncFigures {
  const capacity = workers * perWorker;
  const utilization = inputs.rate / capacity;
  const spike = inputs.spike ?? { rate: inputs.rate, forS: 0 };
  const b = burst(capacity, inputs.rate, spike.rate, spike.forS);
  const latency = utilization < 1 ? bestLatency(inputs, workers) : undefined;
  return { capacity, utilization, ...(latency ? { latency } : {}), backlogPeak: b.backlogPeak, drainS: b.drainS, maxWaitS: b.maxWaitS, spikeMeanWaitS: b.spikeMeanWaitS };
}

/**
 * Latency at the average rate. Unbatched (b = 1) it is M/D/c: c slots, each request served
 * alone in S(1). With batching, workers take what is queued, so the batch size settles where
 * the load puts it; we take the size among 1, 2, 4, … and --batch with the lowest p99. A
 * batch of b is modelled as b slots of one worker, each taking S(b) (so c·b slots, the same
 * capacity as full batches), plus one whole S(b) of waiting at p99 (half at the mean) because
 * a request that misses a batch waits for it to finish rather than joining it.
 */
function bestLatency(inputs: PlanInputs, workers: number): AsyncFigures['latency'] {
  let best: AsyncFigures['latency'];
  for (const b of batchSizes(inputs.batch)) {
    const s = batchMs(inputs, b);
    const load = (inputs.rate * s) / 1000;
    const slots = workers * b;
    if (!(load < slots)) continue;
    const { wait, exact } = mdcWaitBest(load, slots, s);
    const gate = b > 1 ? s : 0;
    const p99WaitMs = wait.quantile(PERCENTILE) + gate;
    const candidate = { batch: b, meanWaitMs: wait.meanWait + gate / 2, p99WaitMs, p99LatencyMs: p99WaitMs + s, exact };
    if (best === undefined || candidate.p99LatencyMs < best.p99LatencyMs) best = candidate;
  }
  return best;
}

function batchSizes(max: number): number[] {
  const sizes: number[] = [];
  for (let b = 1; b < max; b *= 2) sizes.push(b);
  sizes.push(max);
  return sizes;
}

/** Why a given worker count misses a target, one clause each. */
function shortfalls(inputs: PlanInputs, workers: number, f: AsyncFigures, needed: Needed): string[] {
  const out: string[] = [];
  if (f.utilization >= 1) {
    out.push(`utilization >= 1: the queue grows without bound (${workers} workers serve ${round(f.capacity)} req/s, ${inputs.rate} req/s arrive)`);
  } else {
    if ('reason' in needed) out.push(needed.reason);
    else if (f.latency !== undefined && f.latency.p99LatencyMs > inputs.p99Ms) {
      out.push(`p99 latency ${round(f.latency.p99LatencyMs)} ms is above the ${inputs.p99Ms} ms target`);
    }
    if (f.drainS > inputs.catchUpS * (1 + 1e-9)) {
      out.push(
        Number.isFinite(f.drainS)
          ? `the spike's backlog takes ${round(f.drainS)} s to drain, more than the ${inputs.catchUpS} s catch-up target`
          : `the spike's backlog never drains`,
      );
    }
  }
  if (out.length === 0) return [];
  const hint = 'workers' in needed ? ` (${needed.workers} would meet every target)` : '';
  // The saturation message leads, verbatim, so scripts and people can match it.
  return [f.utilization >= 1 ? `${out.join('; ')}${hint}` : `with ${workers} workers: ${out.join('; ')}${hint}`];
}

function assumptions(inputs: PlanInputs, single: number, peakRate: number, a: AsyncPlan): string[] {
  const out = [
    `a worker is one serving slot (one model replica) running one batch at a time; all workers take requests in order from one queue; no failures, retries, cold starts or network time`,
    `Poisson arrivals at ${inputs.rate} req/s on average: the p99 and the Erlang figures assume independent arrivals; traffic that clumps within the average needs more workers`,
    `deterministic service S(b) = ${inputs.serviceMs} ms + b x ${inputs.perItemMs} ms; async latency by ${a.latency_model}` +
      (a.latency_model === LATENCY_MODELS.exact ? '' : ', which can be a little low at light load and a little high near saturation'),
  ];
  const spike = inputs.spike;
  const steady = spike === undefined || spike.forS * 1000 >= 100 * single;
  out.push(
    `sync: Erlang B loss system M/G/c/c at ${peakRate} req/s (insensitive to the service-time distribution), in steady state: ` +
      (spike === undefined
        ? 'holds at a constant rate'
        : `${steady ? 'holds' : 'does not hold'} (spike ${spike.forS} s vs S(1) = ${single} ms${steady ? '' : '; a spike this short blocks less than Erlang B says'})`),
  );
  if (inputs.batch > 1) {
    out.push(`sync: each request holds a slot for S(1) = ${single} ms (no batching: a synchronous server that batches the requests it holds at once needs fewer)`);
  }
  if (spike === undefined) {
    out.push(`no spike given: both deployments are sized for ${inputs.rate} req/s alone`);
  } else if (a.backlog_peak === null || a.workers === null) {
    out.push('fluid model of the spike: not evaluated');
  } else if (a.backlog_peak === 0) {
    out.push(`fluid model of the spike: capacity ${round(a.capacity_rps ?? 0)} req/s covers the spike, no backlog builds (beyond random queueing)`);
  } else {
    const valid = a.backlog_peak >= 10 * a.workers;
    out.push(
      `fluid model of the spike (backlog ${round(a.backlog_peak)} requests vs ${a.workers} workers), valid when the backlog >> workers: ` +
        (valid ? 'holds' : 'does not hold; random queueing is of the same size, so backlog and drain time are rough'),
    );
    out.push(
      `the queue holds the whole backlog and clients accept waits of up to ${round(a.max_wait_s ?? Number.POSITIVE_INFINITY)} s during the spike ` +
        `(beyond the gateway's max_wait_s a held request is answered 202 and polled)`,
    );
  }
  if (inputs.batch > 1) {
    out.push(
      `a backlog is served in full batches of ${inputs.batch}; at the average rate batches of ${a.effective_batch ?? '?'} are assumed, ` +
        `modelled as slots taking S(b) plus one batch time of waiting at p99: an estimate, not an exact result`,
    );
  }
  return out;
}

function finite(x: number | undefined): number | null {
  return x === undefined || !Number.isFinite(x) ? null : x;
}

function round(x: number): string {
  if (!Number.isFinite(x)) return 'infinity';
  return Math.abs(x) >= 100 ? x.toFixed(0) : Number(x.toPrecision(3)).toString();
}
