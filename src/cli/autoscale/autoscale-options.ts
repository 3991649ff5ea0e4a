import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { configFlags } from '../../config/flags.js';
import { parseArgsMessage } from '../plan-command.js';

export const AUTOSCALE_HELP = `Usage: spillway autoscale --model M [--min N] [--max N] [--target-s S] [--cooldown-s S]
         [--idle-s S] [--ceiling N] [config options…]

Runs \`spillway worker --models M\` processes on this machine, as many as the backlog needs:
the planner's count of workers that clear backlog + in flight within --target-s at the
measured arrival and drain rates (docs/autoscaling.md). Every other option (--broker, --data,
--models, --prefix, --config, …) is the deployment's, passed on to each worker as it is.

  --model M         the model to scale (required)
  --min N           fewest workers, 0 to scale to zero when idle (default 0)
  --max N           most workers (default: --ceiling)
  --target-s S      catch up with the backlog within S seconds (default 60)
  --cooldown-s S    after a change, wait this long before removing a worker (default 30)
  --idle-s S        with --min 0, stop the last worker after S seconds of nothing (default 60)
  --ceiling N       the most workers this machine can run (default: its cores, here ${availableParallelism()})
  --tick-ms MS      how often the signals are read (default 1000)
  --retry-s S       after a worker fails to start, wait this long before the next (default 10)
  --window-s S      how far back drain and arrival rates are measured (default 30)
  --help            show this help

Exit status: 0 stopped by SIGTERM or SIGINT (every worker drained), 2 bad input.
`;

const OPTIONS = {
  model: { type: 'string' },
  min: { type: 'string' },
  max: { type: 'string' },
  'target-s': { type: 'string' },
  'cooldown-s': { type: 'string' },
  'idle-s': { type: 'string' },
  ceiling: { type: 'string' },
  'tick-ms': { type: 'string' },
  'retry-s': { type: 'string' },
  'window-s': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface AutoscaleOptions {
  readonly model: string;
  readonly min: number;
  readonly max: number;
  readonly targetS: number;
  readonly cooldownMs: number;
  readonly idleMs: number;
  readonly tickMs: number;
  readonly retryMs: number;
  /** How far back rates are measured. */
  readonly windowMs: number;
  /** The deployment's own options as given, for every worker's command line. */
  readonly configArgs: readonly string[];
  /** The same options parsed, for loadConfig; `config` is the config file. */
  readonly configValues: Readonly<Record<string, string | boolean>>;
  readonly help: boolean;
}

/** Bad input: one line naming the flag, exit code 2. */
export class AutoscaleInputError extends Error {}

export function parseAutoscaleArgs(argv: readonly string[], cores = availableParallelism()): AutoscaleOptions {
  const configOptions = Object.fromEntries([
    ['config', { type: 'string' as const }],
    ...configFlags().map((f) => [f.flag, { type: f.type === 'boolean' ? ('boolean' as const) : ('string' as const) }] as const),
  ]);
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...configOptions, ...OPTIONS }, strict: true, allowPositionals: false, tokens: true });
  } catch (error) {
    throw new AutoscaleInputError(parseArgsMessage(error));
  }
  const own = new Set<string>(Object.keys(OPTIONS));
  // The deployment's options go to each worker exactly as given.
  const configArgs = parsed.tokens.flatMap((t) => (t.kind !== 'option' || own.has(t.name) ? [] : t.value === undefined ? [t.rawName] : [t.rawName, t.value]));
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const configValues = Object.fromEntries(Object.entries(v).filter((e): e is [string, string | boolean] => !own.has(e[0]) && e[1] !== undefined));
  const help = v['help'] === true;
  if (help) return { model: '', min: 0, max: 0, targetS: 0, cooldownMs: 0, idleMs: 0, tickMs: 0, retryMs: 0, windowMs: 0, configArgs, configValues, help };
  const model = v['model'];
  if (typeof model !== 'string' || model === '') throw new AutoscaleInputError('--model is required: the model whose workers to scale');
  const ceiling = count(v, 'ceiling', 1) ?? cores;
  const min = count(v, 'min', 0) ?? 0;
  const max = count(v, 'max', 1) ?? ceiling;
  if (min > max) throw new AutoscaleInputError(`--min ${min} is above --max ${max}`);
  if (max > ceiling) {
    const why = v['ceiling'] === undefined ? `this machine has ${cores} cores, and a worker process beyond that only competes with the others for them` : `--ceiling is ${ceiling}`;
    throw new AutoscaleInputError(`--max ${max} is more workers than can be started here: ${why} (raise --ceiling to run more anyway)`);
  }
  return {
    model,
    min,
    max,
    targetS: seconds(v, 'target-s', 60, true),
    cooldownMs: seconds(v, 'cooldown-s', 30, false) * 1000,
    idleMs: seconds(v, 'idle-s', 60, false) * 1000,
    tickMs: count(v, 'tick-ms', 50) ?? 1000,
    retryMs: seconds(v, 'retry-s', 10, false) * 1000,
    windowMs: seconds(v, 'window-s', 30, true) * 1000,
    configArgs,
    configValues,
    help,
  };
}

function count(v: Record<string, string | boolean | undefined>, flag: string, least: number): number | undefined {
  const raw = v[flag];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isInteger(n) || n < least) throw new AutoscaleInputError(`--${flag} must be a whole number ≥ ${least}, got "${String(raw)}"`);
  return n;
}

function seconds(v: Record<string, string | boolean | undefined>, flag: string, fallback: number, positive: boolean): number {
  const raw = v[flag];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || n < 0 || (positive && n === 0)) {
    throw new AutoscaleInputError(`--${flag} must be a number of seconds ${positive ? '> 0' : '≥ 0'}, got "${String(raw)}"`);
  }
  return n;
}
