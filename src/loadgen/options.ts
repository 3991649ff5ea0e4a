import { readFileSync } from 'node:fs';
import { parseReplay } from './replay-file.js';
import { burstProfile, diurnalProfile, replayProfile, steadyProfile, type Profile } from './profiles.js';
import type { ArrivalProcess } from './schedule.js';

/** A flag the user got wrong: the command prints the message (naming the flag) and exits 2. */
export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

/** Runs `resolve`, putting `where` (a file, a tenant of it) before the message of a BenchUsageError it throws. */
export function within<T>(where: string, resolve: () => T): T {
  try {
    return resolve();
  } catch (error) {
    if (error instanceof BenchUsageError) throw new BenchUsageError(`${where}: ${error.message}`);
    throw error;
  }
}

export type ClientMode = 'wait' | 'poll';
export type ProfileName = 'steady' | 'burst' | 'diurnal' | 'replay';
const profileNames: readonly ProfileName[] = ['steady', 'burst', 'diurnal', 'replay'];

export interface BenchOptions {
  /** Base URL without a trailing slash. */
  readonly target: string;
  readonly model: string;
  readonly profile: Profile;
  readonly arrivals: ArrivalProcess;
  readonly seed: number;
  readonly client: ClientMode;
  readonly wait_s: number;
  readonly poll_ms: number;
  readonly drain_timeout_s: number;
  readonly sample_ms: number;
  /** The request body, serialised once: `{"input": …}`. */
  readonly body: string;
  /** Sent as `Authorization: Bearer <key>` on every request of the run; absent: no header. */
  readonly api_key?: string;
  readonly out: string;
  readonly html: string | undefined;
  readonly records: string | undefined;
  readonly quiet: boolean;
  /** Every setting after defaults, as it goes into the report. */
  readonly settings: Readonly<Record<string, string | number | boolean | null>>;
}

interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly arg?: string;
  readonly description: string;
  /** Profiles the flag applies to; absent means all. */
  readonly profiles?: readonly ProfileName[];
  /** A tenant of a --mix file may set it (under the flag's name); the command line's is its default. */
  readonly tenant?: true;
}

/** Every flag of `spillway bench`: the parser's options and the help text come from this table. */
export const benchFlags: Readonly<Record<string, FlagSpec>> = {
  target: { type: 'string', arg: 'url', description: 'the Spillway gateway to load, e.g. http://127.0.0.1:8080 (required)' },
  model: { type: 'string', arg: 'name', description: 'the model to send predictions to (required)' },
  profile: { type: 'string', arg: 'name', description: 'steady | burst | diurnal | replay (default: steady)', tenant: true },
  duration: { type: 'string', arg: 's', description: 'seconds of arrivals (required, except for replay: default the last arrival)' },
  rate: { type: 'string', arg: 'r', description: 'requests/s: steady rate, burst base rate, diurnal mean', profiles: ['steady', 'burst', 'diurnal'], tenant: true },
  'spike-rate': { type: 'string', arg: 'r', description: 'burst: requests/s during the spike (the whole rate, not an addition)', profiles: ['burst'], tenant: true },
  'spike-at': { type: 'string', arg: 's', description: 'burst: when the spike starts, seconds from the start', profiles: ['burst'], tenant: true },
  'spike-for': { type: 'string', arg: 's', description: 'burst: how long the spike lasts, seconds', profiles: ['burst'], tenant: true },
  amplitude: { type: 'string', arg: 'a', description: 'diurnal: swing around the mean, a fraction (0.5, 50%) or a rate (40/s); default 0.5', profiles: ['diurnal'], tenant: true },
  period: { type: 'string', arg: 's', description: 'diurnal: seconds per cycle (default: --duration)', profiles: ['diurnal'], tenant: true },
  replay: { type: 'string', arg: 'file', description: 'replay: arrival times, one per line, in seconds from the start', profiles: ['replay'], tenant: true },
  arrivals: { type: 'string', arg: 'kind', description: 'poisson | uniform (default: poisson)', profiles: ['steady', 'burst', 'diurnal'], tenant: true },
  seed: { type: 'string', arg: 'n', description: 'seed of the arrival schedule (default: 1)', profiles: ['steady', 'burst', 'diurnal'], tenant: true },
  client: { type: 'string', arg: 'mode', description: 'wait: Prefer: wait=N, then poll on 202 | poll: Prefer: respond-async, then poll (default: wait)' },
  wait: { type: 'string', arg: 's', description: 'seconds to ask the gateway to hold a request (default: 60, at most half of --drain-timeout)' },
  'poll-ms': { type: 'string', arg: 'ms', description: 'interval between polls of an unfinished prediction (default: 250)' },
  'drain-timeout': { type: 'string', arg: 's', description: 'after the arrival window, how long to wait for results before counting the rest lost (default: 120)' },
  'sample-ms': { type: 'string', arg: 'ms', description: 'interval between samples of the model (queue depth, workers) (default: 1000)' },
  input: { type: 'string', arg: 'json', description: 'the input of every request, as JSON (default: {})', tenant: true },
  'input-file': { type: 'string', arg: 'file', description: 'read the input (JSON) from a file instead', tenant: true },
  out: { type: 'string', arg: 'file', description: 'the JSON report (default: bench-report.json)' },
  html: { type: 'string', arg: 'file', description: 'the HTML report (default: --out with .html)' },
  'no-html': { type: 'boolean', description: 'do not write the HTML report' },
  records: { type: 'string', arg: 'file', description: 'also write one CSV line per request (with --mix, a first column names the tenant)' },
  key: { type: 'string', arg: 'key', description: 'API key sent as Authorization: Bearer on every request (default: $SPILLWAY_API_KEY)' },
  mix: { type: 'string', arg: 'file', description: 'run several tenants\' profiles at once, each with its own key, from a JSON file (docs/bench.md)' },
  quiet: { type: 'boolean', description: 'no progress line on stderr' },
  help: { type: 'boolean', description: 'show this help' },
};

/** Flags as node:util parseArgs gives them, by name without the dashes. */
type Values = Readonly<Record<string, string | boolean | undefined>>;
export type { Values as FlagValues };

const str = (v: Values, flag: string): string | undefined => {
  const value = v[flag];
  return typeof value === 'string' ? value : undefined;
};

function number(v: Values, flag: string, rule: { min?: number; above?: number; integer?: boolean }, fallback?: number): number | undefined {
  const raw = str(v, flag);
  if (raw === undefined) return fallback;
  const n = raw.trim() === '' ? Number.NaN : Number(raw);
  const what = rule.integer === true ? 'an integer' : 'a number';
  const bound = rule.above !== undefined ? ` above ${rule.above}` : rule.min !== undefined ? ` at or above ${rule.min}` : '';
  const bad =
    !Number.isFinite(n) ||
    (rule.integer === true && !Number.isInteger(n)) ||
    (rule.above !== undefined && n <= rule.above) ||
    (rule.min !== undefined && n < rule.min);
  if (bad) throw new BenchUsageError(`--${flag} must be ${what}${bound} (got "${raw}")`);
  return n;
}

function required(v: Values, flag: string, profile: string, rule: { min?: number; above?: number }): number {
  const n = number(v, flag, rule);
  if (n === undefined) throw new BenchUsageError(`--${flag} is required for --profile ${profile}`);
  return n;
}

function oneOf<T extends string>(v: Values, flag: string, allowed: readonly T[], fallback: T): T {
  const raw = str(v, flag) ?? fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new BenchUsageError(`--${flag} must be one of ${allowed.join(', ')} (got "${raw}")`);
  }
  return raw as T;
}

function target(v: Values): string {
  const raw = str(v, 'target');
  if (raw === undefined) throw new BenchUsageError('--target is required (the gateway URL, e.g. http://127.0.0.1:8080)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new BenchUsageError(`--target must be an http:// or https:// URL (got "${raw}")`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BenchUsageError(`--target must be an http:// or https:// URL (got "${raw}")`);
  }
  return url.href.replace(/\/+$/, '');
}

function input(v: Values): { body: string; shown: string } {
  const inline = str(v, 'input');
  const file = str(v, 'input-file');
  if (inline !== undefined && file !== undefined) throw new BenchUsageError('--input and --input-file cannot both be given');
  let text = inline ?? '{}';
  let flag = '--input';
  if (file !== undefined) {
    flag = '--input-file';
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new BenchUsageError(`--input-file ${file} cannot be read: ${(error as Error).message}`);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BenchUsageError(`${flag} is not valid JSON: ${(error as Error).message}`);
  }
  const body = JSON.stringify({ input: value });
  const compact = JSON.stringify(value);
  return { body, shown: compact.length <= 1024 ? compact : `<${compact.length} bytes of JSON>` };
}

/** diurnal --amplitude: "0.5" or "50%" (fraction of the mean) or "40/s" (requests/s). */
function amplitude(v: Values, mean: number): number {
  const raw = str(v, 'amplitude');
  if (raw === undefined) return 0.5;
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*(%|\/s)?\s*$/i.exec(raw);
  const n = m === null ? Number.NaN : Number(m[1]);
  const fraction = m?.[2] === '%' ? n / 100 : m?.[2] === '/s' ? n / mean : n;
  if (!Number.isFinite(fraction) || fraction < 0 || fraction > 1) {
    throw new BenchUsageError(
      `--amplitude must be a fraction of the mean rate from 0 to 1 (0.5, 50%) or a rate up to --rate (40/s) (got "${raw}")`,
    );
  }
  return fraction;
}

function buildProfile(v: Values, name: ProfileName): { profile: Profile; settings: Record<string, number | string | null> } {
  if (name === 'replay') {
    const file = str(v, 'replay');
    if (file === undefined) throw new BenchUsageError('--replay is required for --profile replay (a file of arrival times in seconds)');
    let arrivals: Float64Array;
    try {
      arrivals = parseReplay(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new BenchUsageError(`--replay ${file}: ${(error as Error).message}`);
    }
    const last = arrivals[arrivals.length - 1] ?? 0;
    const duration = number(v, 'duration', { above: 0 }, Math.max(last, 0.001)) ?? last;
    return { profile: replayProfile({ arrivals, duration_s: duration }), settings: { replay: file, duration } };
  }
  const duration = number(v, 'duration', { above: 0 });
  if (duration === undefined) throw new BenchUsageError(`--duration is required for --profile ${name} (seconds of arrivals)`);
  const rate = required(v, 'rate', name, { above: 0 });
  if (name === 'steady') return { profile: steadyProfile({ rate, duration_s: duration }), settings: { rate, duration } };
  if (name === 'burst') {
    const spikeRate = required(v, 'spike-rate', name, { above: 0 });
    const spikeAt = required(v, 'spike-at', name, { min: 0 });
    const spikeFor = required(v, 'spike-for', name, { above: 0 });
    if (spikeAt >= duration) {
      throw new BenchUsageError(`--spike-at ${spikeAt} starts at or after the end of the run (--duration ${duration})`);
    }
    if (spikeAt + spikeFor > duration) {
      throw new BenchUsageError(
        `--spike-for ${spikeFor} runs past the end of the run: --spike-at ${spikeAt} + --spike-for ${spikeFor} > --duration ${duration}`,
      );
    }
    return {
      profile: burstProfile({ rate, spike_rate: spikeRate, spike_at_s: spikeAt, spike_for_s: spikeFor, duration_s: duration }),
      settings: { rate, spike_rate: spikeRate, spike_at: spikeAt, spike_for: spikeFor, duration },
    };
  }
  const amp = amplitude(v, rate);
  const period = number(v, 'period', { above: 0 }, duration) ?? duration;
  return {
    profile: diurnalProfile({ rate, amplitude: amp, period_s: period, duration_s: duration }),
    settings: { rate, amplitude: amp, period, duration },
  };
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Refuses a key that could not be sent as a header value (or would be sent mangled), saying
 * where it came from (`--key`, `SPILLWAY_API_KEY`…) but never the key itself: it is a secret.
 */
export function checkApiKey(key: string, source: string): string {
  if (key === '') throw new BenchUsageError(`${source} is empty: give an API key (spw_…), or leave it out`);
  if (!/^[\x21-\x7e]+$/.test(key)) {
    throw new BenchUsageError(`${source} must be an API key (spw_…) of visible ASCII characters, with no spaces or line breaks`);
  }
  return key;
}

/** --key, else SPILLWAY_API_KEY (unset and empty alike mean none). */
function apiKey(v: Values, env: Env): string | undefined {
  const flag = str(v, 'key');
  if (flag !== undefined) return checkApiKey(flag, '--key');
  const fromEnv = env['SPILLWAY_API_KEY'];
  return fromEnv === undefined || fromEnv === '' ? undefined : checkApiKey(fromEnv, 'SPILLWAY_API_KEY');
}

/**
 * What the report says of the key: its public id (a Spillway key is `spw_<id>_<secret>`, and
 * the id is no secret), "given" for a key of another form, null for none.
 */
function shownKey(key: string | undefined): string | null {
  if (key === undefined) return null;
  return /^spw_([0-9a-f]{16})_/.exec(key)?.[1] ?? 'given';
}

type Settings = BenchOptions['settings'];

/** What every open loop of a run shares: where it sends, how it follows requests, where it reports. */
export type SharedOptions = Pick<
  BenchOptions,
  'target' | 'model' | 'client' | 'wait_s' | 'poll_ms' | 'drain_timeout_s' | 'sample_ms' | 'out' | 'html' | 'records' | 'quiet' | 'settings'
>;

/** What one open loop sends: its schedule, its body and its key. */
export type LoadOptions = Pick<BenchOptions, 'profile' | 'arrivals' | 'seed' | 'body' | 'api_key' | 'settings'>;

/** The flags of {@link SharedOptions}, or throws BenchUsageError naming the first flag at fault. */
export function resolveSharedOptions(v: Values): SharedOptions {
  const url = target(v);
  const model = str(v, 'model');
  if (model === undefined || model === '') throw new BenchUsageError('--model is required (the model to send predictions to)');
  const client = oneOf<ClientMode>(v, 'client', ['wait', 'poll'], 'wait');
  const pollMs = number(v, 'poll-ms', { min: 10, integer: true }, 250) ?? 250;
  const drain = number(v, 'drain-timeout', { min: 0 }, 120) ?? 120;
  // A POST still held at the drain deadline has no answer, so the bench cannot tell whether it
  // was accepted; a wait well inside the deadline means every held POST is answered before it.
  const defaultWait = Math.min(60, Math.floor((drain / 2) * 10) / 10);
  const wait = number(v, 'wait', { above: 0 }, defaultWait) ?? defaultWait;
  if (client === 'wait' && str(v, 'wait') !== undefined && wait >= drain) {
    throw new BenchUsageError(
      `--wait ${wait} must be shorter than --drain-timeout ${drain}: a request still held at the drain deadline has no answer to count`,
    );
  }
  const sampleMs = number(v, 'sample-ms', { min: 50, integer: true }, 1000) ?? 1000;
  const out = str(v, 'out') ?? 'bench-report.json';
  if (v['no-html'] === true && str(v, 'html') !== undefined) throw new BenchUsageError('--html and --no-html cannot both be given');
  const html = v['no-html'] === true ? undefined : (str(v, 'html') ?? `${out.replace(/\.json$/i, '')}.html`);
  const records = str(v, 'records');
  return {
    target: url,
    model,
    client,
    wait_s: wait,
    poll_ms: pollMs,
    drain_timeout_s: drain,
    sample_ms: sampleMs,
    out,
    html,
    records,
    quiet: v['quiet'] === true,
    settings: {
      target: url,
      model,
      client,
      wait: client === 'wait' ? wait : null,
      poll_ms: pollMs,
      drain_timeout: drain,
      sample_ms: sampleMs,
      out,
      html: html ?? null,
      records: records ?? null,
    },
  };
}

/** The flags of {@link LoadOptions}, or throws BenchUsageError naming the first flag at fault. */
export function resolveLoadOptions(v: Values, env: Env = process.env): LoadOptions {
  const profileName = oneOf(v, 'profile', profileNames, 'steady');
  for (const [flag, spec] of Object.entries(benchFlags)) {
    if (v[flag] !== undefined && spec.profiles !== undefined && !spec.profiles.includes(profileName)) {
      throw new BenchUsageError(`--${flag} does not apply to --profile ${profileName} (only to ${spec.profiles.join(', ')})`);
    }
  }
  const { profile, settings: profileSettings } = buildProfile(v, profileName);
  const arrivals = oneOf<ArrivalProcess>(v, 'arrivals', ['poisson', 'uniform'], 'poisson');
  const seed = number(v, 'seed', { min: 0, integer: true }, 1) ?? 1;
  const { body, shown } = input(v);
  const key = apiKey(v, env);
  const isReplay = profileName === 'replay';
  return {
    profile,
    arrivals,
    seed,
    body,
    ...(key === undefined ? {} : { api_key: key }),
    settings: {
      profile: profileName,
      ...profileSettings,
      arrivals: isReplay ? 'replay' : arrivals,
      seed: isReplay ? null : seed,
      input: shown,
      api_key: shownKey(key),
    },
  };
}

/** One open loop's options; `first` settings (a tenant's name, say) lead its report's settings. */
export function combineOptions(shared: SharedOptions, load: LoadOptions, first: Settings = {}): BenchOptions {
  // Spread again after the load's, the shared settings keep the places target and model took first.
  const settings = { ...first, target: shared.target, model: shared.model, ...load.settings, ...shared.settings };
  return { ...shared, ...load, settings };
}

/** Turns parsed flags into options, or throws BenchUsageError naming the first flag at fault. */
export function resolveOptions(v: Values, env: Env = process.env): BenchOptions {
  const load = resolveLoadOptions(v, env);
  return combineOptions(resolveSharedOptions(v), load);
}

export function benchUsage(): string {
  const rows = Object.entries(benchFlags).map(([flag, spec]) => {
    const left = spec.type === 'boolean' ? `--${flag}` : `--${flag} <${spec.arg ?? 'value'}>`;
    return `  ${left.padEnd(24)} ${spec.description}${spec.tenant === true ? ' [tenant]' : ''}`;
  });
  return [
    'Usage: spillway bench --target URL --model NAME [--profile steady|burst|diurnal|replay] [options]',
    '',
    'Sends predictions on an open-loop schedule (arrivals never wait for responses), follows each to',
    'its result, samples the model\'s queue and workers, and writes a JSON and an HTML report.',
    '',
    'Examples:',
    '  spillway bench --target http://127.0.0.1:8080 --model sleep --profile steady --rate 50 --duration 60',
    '  spillway bench --target http://127.0.0.1:8080 --model sleep --profile burst --rate 40 \\',
    '      --spike-rate 200 --spike-at 20 --spike-for 10 --duration 60 --out burst.json',
    '  spillway bench --target http://127.0.0.1:8080 --model sleep --profile diurnal --rate 50 --amplitude 0.8 --period 120 --duration 240',
    '  spillway bench --target http://127.0.0.1:8080 --model sleep --profile replay --replay arrivals.txt',
    '  spillway bench --target http://127.0.0.1:8080 --model sleep --key spw_… --rate 50 --duration 60',
    '',
    'Several tenants at once: --mix FILE runs one open loop per tenant, concurrently, each with its',
    'own key, and reports each tenant apart. The file:',
    '  { "tenants": [',
    '      { "name": "A", "key_env": "A_KEY", "profile": "steady", "rate": 400 },',
    '      { "name": "B", "key": "spw_…", "profile": "burst", "rate": 5, "spike-rate": 50, "spike-at": 10, "spike-for": 5 } ] }',
    '  spillway bench --target http://127.0.0.1:8080 --model sleep --mix tenants.json --duration 60',
    'An entry may set the flags marked [tenant] below (under the same names) and key or key_env;',
    'the rest, and whatever an entry leaves out, come from the command line.',
    '',
    'Options:',
    ...rows,
    '',
    'Exit codes: 0 the run completed (rejections and losses are in the report), 1 the target or model',
    'cannot be reached, refuses the API key (or wants one), or a report cannot be written, 2 a flag or',
    'the --mix file is wrong.',
  ].join('\n');
}
