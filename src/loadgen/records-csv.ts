import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { PhaseSpec } from './profiles.js';
import { Fate, Outcome, type RequestLog } from './request-log.js';

const outcomes: Record<number, string> = { [Outcome.pending]: 'pending', [Outcome.accepted]: 'accepted', [Outcome.rejected]: 'rejected', [Outcome.error]: 'error' };
const fates: Record<number, string> = { [Fate.none]: '', [Fate.succeeded]: 'succeeded', [Fate.failed]: 'failed', [Fate.lost]: 'lost' };

const num = (x: number | undefined, places = 3) => (x === undefined || Number.isNaN(x) ? '' : String(Math.round(x * 10 ** places) / 10 ** places));

/** The requests of one open loop; `tenant` names it in a --mix run. */
export interface RecordsPart {
  readonly tenant?: string;
  readonly log: RequestLog;
  readonly phases: readonly PhaseSpec[];
}

const header = 'request,phase,scheduled_ms,send_lag_ms,http_status,outcome,error,fate,latency_ms,queue_ms,inference_ms';

/**
 * One CSV line per request, streamed so a run of millions does not build one huge string. With
 * named parts (a --mix run) a first column says whose each line is; request numbers count per part.
 */
export async function writeRecordsCsv(file: string, parts: readonly RecordsPart[]): Promise<void> {
  const out = createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => {
    out.once('error', reject);
    out.once('finish', resolve);
  });
  const write = async (line: string) => {
    if (!out.write(line)) await Promise.race([once(out, 'drain'), done]);
  };
  const named = parts.some((p) => p.tenant !== undefined);
  await write(`${named ? 'tenant,' : ''}${header}\n`);
  for (const { tenant, log, phases } of parts) {
    const lead = named ? `${tenant ?? ''},` : '';
    for (let i = 0; i < log.size; i++) await write(`${lead}${recordLine(log, phases, i)}\n`);
  }
  out.end();
  await done;
}

function recordLine(log: RequestLog, phases: readonly PhaseSpec[], i: number): string {
  const outcome = log.outcome[i] ?? 0;
  const error = outcome === Outcome.error ? (log.errorKeys[log.errorKey[i] ?? 0] ?? '') : '';
  const status = log.status[i] ?? 0;
  return [
    i,
    phases[log.phase[i] ?? 0]?.name ?? '',
    num(log.scheduled[i]),
    num(log.lagMs(i)),
    status === 0 ? '' : status,
    outcomes[outcome] ?? '',
    error,
    fates[log.fate[i] ?? 0] ?? '',
    num(log.latencyMs(i)),
    num(log.queueMs[i]),
    num(log.inferenceMs[i]),
  ].join(',');
}
