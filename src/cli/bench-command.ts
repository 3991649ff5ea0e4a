import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { renderHtml } from '../loadgen/html-report.js';
import { bearerHeaders, HttpClient } from '../loadgen/http-client.js';
import { renderMixHtml } from '../loadgen/mix-html-report.js';
import { resolveMix, type MixOptions } from '../loadgen/mix-options.js';
import { buildMixReport, type MixReport } from '../loadgen/mix-report.js';
import { describeModel, TargetError } from '../loadgen/model-probe.js';
import { benchFlags, benchUsage, BenchUsageError, resolveOptions, type BenchOptions, type SharedOptions } from '../loadgen/options.js';
import { writeRecordsCsv } from '../loadgen/records-csv.js';
import { buildReport, formatReportJson, type BenchReport } from '../loadgen/report.js';
import { runOpenLoops, type RunResult } from '../loadgen/runner.js';
import { asRun, programName } from './program-name.js';

const say = (text: string) => process.stderr.write(`spillway bench: ${text}\n`);

/** What one invocation runs: a single open loop, or one per tenant of a --mix file. */
interface BenchPlan {
  readonly shared: SharedOptions;
  /** A tenant's name for each run of a mix; none for a single run. */
  readonly runs: readonly { readonly tenant?: string; readonly options: BenchOptions }[];
  readonly mix?: MixOptions;
}

function planOf(values: Readonly<Record<string, string | boolean | undefined>>): BenchPlan {
  if (values['mix'] === undefined) {
    const options = resolveOptions(values);
    return { shared: options, runs: [{ options }] };
  }
  const mix = resolveMix(values);
  return { shared: mix.shared, runs: mix.tenants.map((t) => ({ tenant: t.name, options: t.options })), mix };
}

function checkWritable(flag: string, file: string | undefined): void {
  if (file === undefined) return;
  const dir = dirname(resolve(file));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new BenchUsageError(`--${flag} ${file}: the folder ${dir} does not exist`);
}

const reportFiles = (o: SharedOptions) => `report: ${o.out}${o.html === undefined ? '' : `, ${o.html}`}${o.records === undefined ? '' : `, ${o.records}`}`;

function summary(r: BenchReport, o: SharedOptions): string {
  const lines = [
    `sent ${r.sent}  accepted ${r.accepted}  rejected ${r.rejected}  errored ${r.errored}  completed ${r.completed}  lost ${r.lost}`,
    `latency ms p50 ${r.latency_ms.p50 ?? '-'}  p90 ${r.latency_ms.p90 ?? '-'}  p99 ${r.latency_ms.p99 ?? '-'}  max ${r.latency_ms.max ?? '-'}` +
      `  (send lag p99 ${r.send_lag_ms.p99 ?? '-'} ms)`,
    `backlog peak ${r.backlog_peak ?? '-'}  drain_s ${r.drain_s ?? '-'}  worker slot-seconds ${r.worker_seconds ?? '-'}` +
      `  workers busy ${r.worker_busy_fraction === null ? 'unknown' : `${(r.worker_busy_fraction * 100).toFixed(1)}%`}`,
    ...r.notes.map((n) => `note: ${n}`),
    reportFiles(o),
  ];
  return `${lines.join('\n')}\n`;
}

/** A line per tenant, then each note once with the tenants it concerns (the model's concern them all). */
function mixSummary(r: MixReport, o: SharedOptions): string {
  const tenants = Object.entries(r.tenants);
  const width = Math.max(...tenants.map(([name]) => name.length));
  const lines = tenants.map(
    ([name, t]) =>
      `${name.padEnd(width)}  sent ${t.sent}  rejected ${t.rejected}  errored ${t.errored}  completed ${t.completed}  lost ${t.lost}` +
      `  latency ms p50 ${t.latency_ms.p50 ?? '-'}  p99 ${t.latency_ms.p99 ?? '-'}`,
  );
  const notes = new Map<string, string[]>();
  for (const [name, t] of tenants) for (const note of t.notes) notes.set(note, [...(notes.get(note) ?? []), name]);
  for (const [note, names] of notes) lines.push(`note (${names.join(', ')}): ${note}`);
  lines.push(reportFiles(o));
  return `${lines.join('\n')}\n`;
}

/** parseArgs reads "--rate -3" as a flag without a value; "--rate=-3" lets the rate's own check explain. */
function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k] ?? '';
    const next = argv[k + 1];
    if (a.startsWith('--') && benchFlags[a.slice(2)]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      k++;
    } else out.push(a);
  }
  return out;
}

/** A 401 is about the key, which the gateway's message cannot know how the bench was given. */
function keyHint(error: TargetError, o: BenchOptions, mix: boolean): string {
  if (error.status !== 401) return '';
  if (o.api_key !== undefined) return ' (the target does not accept this API key: is it unknown, revoked or expired?)';
  return mix
    ? ' (the target wants an API key: give the tenant "key" or "key_env" in the --mix file, or --key / SPILLWAY_API_KEY for every tenant)'
    : ' (the target wants an API key: give it with --key or SPILLWAY_API_KEY)';
}

/**
 * Fails before the run, not after it: the target must answer for the model, with every key the
 * run will use. Returns an exit code to stop with, or undefined to go on.
 */
async function probeTarget(plan: BenchPlan): Promise<number | undefined> {
  for (const [k, { tenant, options: o }] of plan.runs.entries()) {
    const who = tenant === undefined ? '' : `tenant "${tenant}": `;
    const probe = new HttpClient(o.target, bearerHeaders(o.api_key));
    try {
      const model = await describeModel(probe, o.model, 5000);
      // The model's state is the same whoever asks; say it once.
      if (k > 0) continue;
      if (model.state === 'failed') {
        say(`model "${o.model}" failed to load on ${o.target}: ${model.error ?? 'no reason given'}`);
        return 1;
      }
      if (model.workers.length === 0) say(`no worker has reported serving "${o.model}" yet; requests will wait for one`);
    } catch (error) {
      if (!(error instanceof TargetError)) throw error;
      say(`${who}${error.message}${keyHint(error, o, plan.mix !== undefined)}`);
      return 1;
    } finally {
      probe.close();
    }
  }
  return undefined;
}

/** Writes the JSON, HTML and CSV reports and returns the summary for stdout. */
async function writeReports(plan: BenchPlan, runs: readonly RunResult[]): Promise<string> {
  const o = plan.shared;
  let text: string;
  if (plan.mix !== undefined) {
    const report = buildMixReport(plan.mix, runs);
    await writeFile(o.out, formatReportJson(report));
    if (o.html !== undefined) await writeFile(o.html, renderMixHtml(report));
    text = mixSummary(report, o);
  } else {
    const report = buildReport(plan.runs[0]!.options, runs[0]!);
    await writeFile(o.out, formatReportJson(report));
    if (o.html !== undefined) await writeFile(o.html, renderHtml(report));
    text = summary(report, o);
  }
  if (o.records !== undefined) {
    const parts = plan.runs.map((r, k) => ({ ...(r.tenant === undefined ? {} : { tenant: r.tenant }), log: runs[k]!.log, phases: r.options.profile.phases }));
    await writeRecordsCsv(o.records, parts);
  }
  return text;
}

/**
 * `spillway bench`: load a running deployment on an open-loop schedule (or several tenants'
 * schedules at once, --mix) and report every request's fate, the backlog and what the workers
 * cost. Returns the exit code: 0 the run completed, 1 the target or model cannot be used or a
 * report cannot be written, 2 bad flags or a bad --mix file.
 */
export async function runBench(argv: readonly string[]): Promise<number> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [flag, spec] of Object.entries(benchFlags)) options[flag] = { type: spec.type };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: joinNegativeValues(argv), options, strict: true, allowPositionals: false }) as {
      values: Record<string, string | boolean | undefined>;
    });
  } catch (error) {
    say(`${(error as Error).message} (see ${programName()} bench --help)`);
    return 2;
  }
  if (values['help'] === true) {
    process.stdout.write(`${asRun(benchUsage())}\n`);
    return 0;
  }
  let plan: BenchPlan;
  try {
    plan = planOf(values);
    checkWritable('out', plan.shared.out);
    checkWritable('html', plan.shared.html);
    checkWritable('records', plan.shared.records);
  } catch (error) {
    if (!(error instanceof BenchUsageError)) throw error;
    say(error.message);
    return 2;
  }
  const refused = await probeTarget(plan);
  if (refused !== undefined) return refused;

  // Ctrl-C once: no more sends, but follow what was sent. Twice: stop following, write the
  // report now. Three times: quit without one.
  const stopSending = new AbortController();
  const stopDraining = new AbortController();
  const onSignal = () => {
    if (stopDraining.signal.aborted) process.exit(130);
    if (stopSending.signal.aborted) {
      say('interrupted again: writing the report now; unfinished requests count as lost (Ctrl-C again to quit)');
      stopDraining.abort();
      return;
    }
    say('interrupted: no more sends; waiting for the requests in flight (Ctrl-C again to stop waiting)');
    stopSending.abort();
  };
  process.on('SIGINT', onSignal);
  let runs: RunResult[];
  try {
    runs = await runOpenLoops(
      plan.runs.map((r) => r.options),
      { stderr: process.stderr, stopSending: stopSending.signal, stopDraining: stopDraining.signal },
    );
  } finally {
    process.off('SIGINT', onSignal);
  }
  let text: string;
  try {
    text = await writeReports(plan, runs);
  } catch (error) {
    say(`cannot write the report: ${(error as Error).message}`);
    return 1;
  }
  process.stdout.write(text);
  return 0;
}
