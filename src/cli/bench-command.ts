import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { renderHtml } from '../loadgen/html-report.js';
import { HttpClient } from '../loadgen/http-client.js';
import { describeModel, TargetError } from '../loadgen/model-probe.js';
import { benchFlags, benchUsage, BenchUsageError, resolveOptions, type BenchOptions } from '../loadgen/options.js';
import { writeRecordsCsv } from '../loadgen/records-csv.js';
import { buildReport, formatReportJson, type BenchReport } from '../loadgen/report.js';
import { runOpenLoop } from '../loadgen/runner.js';
import { asRun, programName } from './program-name.js';

const say = (text: string) => process.stderr.write(`spillway bench: ${text}\n`);

function checkWritable(flag: string, file: string | undefined): void {
  if (file === undefined) return;
  const dir = dirname(resolve(file));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new BenchUsageError(`--${flag} ${file}: the folder ${dir} does not exist`);
}

function summary(r: BenchReport, o: BenchOptions): string {
  const lines = [
    `sent ${r.sent}  accepted ${r.accepted}  rejected ${r.rejected}  errored ${r.errored}  completed ${r.completed}  lost ${r.lost}`,
    `latency ms p50 ${r.latency_ms.p50 ?? '-'}  p90 ${r.latency_ms.p90 ?? '-'}  p99 ${r.latency_ms.p99 ?? '-'}  max ${r.latency_ms.max ?? '-'}` +
      `  (send lag p99 ${r.send_lag_ms.p99 ?? '-'} ms)`,
    `backlog peak ${r.backlog_peak ?? '-'}  drain_s ${r.drain_s ?? '-'}  worker slot-seconds ${r.worker_seconds ?? '-'}` +
      `  workers busy ${r.worker_busy_fraction === null ? 'unknown' : `${(r.worker_busy_fraction * 100).toFixed(1)}%`}`,
    ...r.notes.map((n) => `note: ${n}`),
    `report: ${o.out}${o.html === undefined ? '' : `, ${o.html}`}${o.records === undefined ? '' : `, ${o.records}`}`,
  ];
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

/**
 * `spillway bench`: load a running deployment on an open-loop schedule and report every
 * request's fate, the backlog and what the workers cost. Returns the exit code: 0 the run
 * completed, 1 the target or model cannot be used or a report cannot be written, 2 bad flags.
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
  let o: BenchOptions;
  try {
    o = resolveOptions(values);
    checkWritable('out', o.out);
    checkWritable('html', o.html);
    checkWritable('records', o.records);
  } catch (error) {
    if (!(error instanceof BenchUsageError)) throw error;
    say(error.message);
    return 2;
  }

  // Fail before the run, not after it: the target must answer for the model.
  const probe = new HttpClient(o.target);
  try {
    const model = await describeModel(probe, o.model, 5000);
    if (model.state === 'failed') {
      say(`model "${o.model}" failed to load on ${o.target}: ${model.error ?? 'no reason given'}`);
      return 1;
    }
    if (model.workers.length === 0) say(`no worker has reported serving "${o.model}" yet; requests will wait for one`);
  } catch (error) {
    if (!(error instanceof TargetError)) throw error;
    say(error.message);
    return 1;
  } finally {
    probe.close();
  }

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
  let report: BenchReport;
  let run;
  try {
    run = await runOpenLoop(o, { stderr: process.stderr, stopSending: stopSending.signal, stopDraining: stopDraining.signal });
    report = buildReport(o, run);
  } finally {
    process.off('SIGINT', onSignal);
  }
  try {
    await writeFile(o.out, formatReportJson(report));
    if (o.html !== undefined) await writeFile(o.html, renderHtml(report));
    if (o.records !== undefined) await writeRecordsCsv(o.records, run.log, o.profile.phases);
  } catch (error) {
    say(`cannot write the report: ${(error as Error).message}`);
    return 1;
  }
  process.stdout.write(summary(report, o));
  return 0;
}
