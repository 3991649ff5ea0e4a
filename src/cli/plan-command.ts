/**
 * `spillway plan`: how many workers a load needs, synchronous (sized for the peak) against
 * Spillway (sized for the average, with a queue). Parses its own flags; the math is in
 * src/plan/. Exit codes: 0 a plan, 1 no worker count meets the targets, 2 bad input.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { formatPlan } from '../plan/format.js';
import { makePlan, type PlanInputs } from '../plan/plan.js';
import { asRun, programName } from './program-name.js';

const HELP = `Usage: spillway plan --rate R [--spike-rate R --spike-for S] --service-ms MS [--per-item-ms MS]
         [--batch N] --p99-ms MS --catch-up S [--json] [options]

How many workers a load needs: a synchronous deployment must be sized for the peak or turn
requests away; Spillway, with a queue in front, is sized for the average and catches up.

Definitions
  worker        one serving slot: one model replica (e.g. a GPU) running one batch at a time
  S(b)          service time of a batch of b requests = service-ms + b x per-item-ms
  rates         requests per second; during the spike arrivals run at --spike-rate instead
                of --rate, for --spike-for seconds

Load and service
  --rate R            average arrival rate, req/s (> 0)
  --spike-rate R      arrival rate during a spike, req/s (>= --rate; needs --spike-for)
  --spike-for S       how long the spike lasts, s (> 0; needs --spike-rate)
  --service-ms MS     fixed time of one batch, ms (>= 0)
  --service-from F    take --service-ms from a report of the bench command (inference_ms.mean)
  --per-item-ms MS    extra time per request in a batch, ms (default 0)
  --batch N           largest batch a worker runs (default 1: no batching)

Targets
  --p99-ms MS         p99 latency (wait + service) at the average rate, ms
  --catch-up S        time to drain the spike's backlog once the spike ends, s (>= 0)
  --sync-loss P       blocking probability that counts as "rejects nothing" for the
                      synchronous deployment (default 0.001)

Output
  --workers N         evaluate N async workers instead of searching for the least
  --concurrency K     slots per worker process (default 1); processes = ceil(workers / K)
  --json              print the plan as JSON
  --help              show this help

The model
  sync    least c with Erlang B(a, c) <= --sync-loss, a = peak rate x S(1) (loss system
          M/G/c/c; Erlang B does not depend on the service-time distribution)
  async   least c with (a) utilization at the average < 1, (b) p99 latency at the average
          <= --p99-ms by M/D/c (exact; near saturation the M/M/c Erlang C tail scaled by
          (1+Cs^2)/2 with Cs = 0), and (c) the spike's backlog, by the fluid model with
          capacity mu = c x b / S(b) (full batches while a backlog exists), drained within
          --catch-up: Q = max(0, (spike - mu) x spike-for), drain = Q / (mu - rate)
  Assumes Poisson arrivals and deterministic service; docs/plan.md says when that breaks.

Exit status: 0 a plan, 1 no worker count meets the targets (explained), 2 bad input.
`;

const OPTIONS = {
  rate: { type: 'string' },
  'spike-rate': { type: 'string' },
  'spike-for': { type: 'string' },
  'service-ms': { type: 'string' },
  'service-from': { type: 'string' },
  'per-item-ms': { type: 'string' },
  batch: { type: 'string' },
  'p99-ms': { type: 'string' },
  'catch-up': { type: 'string' },
  'sync-loss': { type: 'string' },
  workers: { type: 'string' },
  concurrency: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = Partial<Record<keyof typeof OPTIONS, string | boolean>>;

/** Bad input: reported as one line naming the flag, exit code 2. */
class InputError extends Error {}

export async function runPlan(argv: readonly string[]): Promise<number> {
  try {
    const values = parse(argv);
    if (values.help === true) {
      process.stdout.write(asRun(HELP));
      return 0;
    }
    const plan = makePlan(await inputsFrom(values));
    process.stdout.write(values.json === true ? `${JSON.stringify(plan, null, 2)}\n` : formatPlan(plan));
    if (!plan.feasible) {
      process.stderr.write(`spillway plan: not feasible: ${plan.reason ?? 'no worker count meets the targets'}\n`);
      return 1;
    }
    return 0;
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    process.stderr.write(`spillway plan: ${error.message} (see ${programName()} plan --help)\n`);
    return 2;
  }
}

function parse(argv: readonly string[]): Values {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new InputError(parseArgsMessage(error));
  }
}

/** node:util's messages run to three lines; an operator needs the flag and what to do. */
export function parseArgsMessage(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  const text = message ?? String(error);
  const flag = /'(-[^' ]+)/.exec(text)?.[1] ?? '';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${flag}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${/'([^']*)'/.exec(text)?.[1] ?? ''}: every value follows its flag`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (text.includes('does not take an argument')) return `${flag} takes no value`;
      if (text.includes('ambiguous')) return `${flag} needs a value; for a value starting with "-" write ${flag}=VALUE`;
      return `${flag} needs a value`;
    default:
      return text.split('\n')[0] ?? text;
  }
}

async function inputsFrom(v: Values): Promise<PlanInputs> {
  const rate = required(v, 'rate', { min: 0, exclusive: true });
  const spikeRate = number(v, 'spike-rate', { min: 0, exclusive: true });
  const spikeFor = number(v, 'spike-for', { min: 0, exclusive: true });
  if ((spikeRate === undefined) !== (spikeFor === undefined)) {
    throw new InputError(spikeRate === undefined ? '--spike-for needs --spike-rate' : '--spike-rate needs --spike-for');
  }
  if (spikeRate !== undefined && spikeRate < rate) {
    throw new InputError(`--spike-rate (${spikeRate}) is below --rate (${rate}): a spike is the peak rate, not extra on top`);
  }
  let serviceMs = number(v, 'service-ms', { min: 0 });
  const serviceFrom = typeof v['service-from'] === 'string' ? v['service-from'] : undefined;
  if (serviceMs === undefined && serviceFrom !== undefined) serviceMs = await serviceFromReport(serviceFrom);
  if (serviceMs === undefined) throw new InputError('--service-ms is required (or --service-from a bench report)');
  const perItemMs = number(v, 'per-item-ms', { min: 0 }) ?? 0;
  if (!(serviceMs + perItemMs > 0)) throw new InputError('--service-ms: the service time of one request (service-ms + per-item-ms) must be > 0');
  const batch = number(v, 'batch', { min: 1, integer: true }) ?? 1;
  const p99Ms = required(v, 'p99-ms', { min: 0, exclusive: true });
  const catchUpS = required(v, 'catch-up', { min: 0 });
  const syncLoss = number(v, 'sync-loss', { min: 0, exclusive: true, below: 1 }) ?? 0.001;
  const workers = number(v, 'workers', { min: 1, integer: true });
  const concurrency = number(v, 'concurrency', { min: 1, integer: true }) ?? 1;
  return {
    rate,
    ...(spikeRate !== undefined && spikeFor !== undefined ? { spike: { rate: spikeRate, forS: spikeFor } } : {}),
    serviceMs,
    perItemMs,
    batch,
    p99Ms,
    catchUpS,
    syncLoss,
    concurrency,
    ...(workers !== undefined ? { workers } : {}),
    ...(serviceFrom !== undefined && v['service-ms'] === undefined ? { serviceFrom } : {}),
  };
}

interface NumberRule {
  readonly min: number;
  /** min itself is not allowed. */
  readonly exclusive?: boolean;
  /** An exclusive upper bound. */
  readonly below?: number;
  readonly integer?: boolean;
}

// Worker and batch counts past this are typos, and would make the arithmetic inexact.
const MAX_INTEGER = 10_000_000;

function number(v: Values, flag: keyof typeof OPTIONS, rule: NumberRule): number | undefined {
  const raw = v[flag];
  if (typeof raw !== 'string') return undefined;
  const x = raw.trim() === '' ? Number.NaN : Number(raw);
  const bound = rule.exclusive === true ? `> ${rule.min}` : `>= ${rule.min}`;
  const want = rule.integer === true ? `an integer ${bound}` : rule.below !== undefined ? `a number ${bound} and < ${rule.below}` : `a number ${bound}`;
  const ok =
    Number.isFinite(x) &&
    (rule.exclusive === true ? x > rule.min : x >= rule.min) &&
    (rule.below === undefined || x < rule.below) &&
    (rule.integer !== true || (Number.isInteger(x) && x <= MAX_INTEGER));
  if (!ok) throw new InputError(`--${flag} must be ${want}, got "${raw}"`);
  return x;
}

function required(v: Values, flag: keyof typeof OPTIONS, rule: NumberRule): number {
  const x = number(v, flag, rule);
  if (x === undefined) throw new InputError(`--${flag} is required`);
  return x;
}

/** The mean inference time, ms, of a `spillway bench` report. */
async function serviceFromReport(path: string): Promise<number> {
  let report: unknown;
  try {
    report = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new InputError(`--service-from: cannot read ${path} as JSON: ${(error as Error).message.split('\n')[0] ?? ''}`);
  }
  const mean = (report as { inference_ms?: { mean?: unknown } } | null)?.inference_ms?.mean;
  if (typeof mean !== 'number' || !Number.isFinite(mean) || mean < 0) {
    throw new InputError(`--service-from: ${path} has no inference_ms.mean (a number of ms >= 0)`);
  }
  return mean;
}
