/** Text rendering of a plan: a short table for an operator, then the assumptions. */
import type { Constraint, Plan } from './plan.js';

export function formatPlan(plan: Plan): string {
  const { inputs: i, sync, async: a } = plan;
  const lines: string[] = [];
  const spike = i.spike_rate === null ? 'no spike' : `spike of ${num(i.spike_rate)} req/s for ${num(i.spike_for_s ?? 0)} s`;
  const source = i.service_from === null ? '' : ` (from ${i.service_from})`;
  lines.push(
    'Spillway plan',
    `  load      ${num(i.rate)} req/s on average; ${spike}`,
    `  service   S(b) = ${num(i.service_ms)} ms + b x ${num(i.per_item_ms)} ms${source}; batch ${i.batch}; ` +
      `a worker is one slot running one batch at a time (${num(plan.service.worker_capacity_rps)} req/s with full batches)`,
    `  targets   p99 <= ${num(i.p99_ms)} ms at the average; spike backlog drained within ${num(i.catch_up_s)} s; ` +
      `sync rejects <= ${percent(i.sync_loss)}`,
    '',
  );
  const slots = `processes (${i.concurrency} slot${i.concurrency === 1 ? '' : 's'} each)`;
  const asyncTitle = i.workers === null ? 'async (Spillway)' : 'async (given)';
  // Spillway queues what it cannot serve yet; that is "nothing rejected" only while it keeps up.
  const queued = a.utilization !== null && a.utilization < 1 ? '0' : '-';
  const rows: [string, string, string][] = [
    ['', 'sync (sized for peak)', asyncTitle],
    ['workers', opt(sync.workers), opt(a.workers)],
    [slots, opt(sync.processes), opt(a.processes)],
    ['utilization at average', opt(sync.utilization_at_average, percent), opt(a.utilization, percent)],
    ['rejected at peak', opt(sync.blocking_at_peak, percent), queued],
    ['rejected at average', opt(sync.blocking_at_average, percent), queued],
    ['mean wait at average', '0 ms', opt(a.mean_wait_ms, ms)],
    ['p99 wait at average', '0 ms', opt(a.p99_wait_ms, ms)],
    ['p99 latency at average', ms(sync.latency_ms), opt(a.p99_latency_ms, ms)],
  ];
  if (i.spike_rate !== null) {
    rows.push(
      ['backlog peak (requests)', '-', opt(a.backlog_peak, (x) => num(x))],
      ['drained after the spike in', '-', opt(a.drain_s, seconds, 'never')],
      ['longest wait in the spike', '-', opt(a.max_wait_s, seconds, 'unbounded')],
      ['mean wait of spike arrivals', '-', opt(a.spike_mean_wait_s, seconds, 'unbounded')],
    );
  }
  lines.push(...table(rows), '');

  if (a.workers_needed !== null) {
    const by = a.limited_by.map(constraintName).join(' and ');
    lines.push(`  async workers needed: ${a.workers_needed}, set by ${by}`);
  }
  if (a.effective_batch !== null && i.batch > 1) lines.push(`  batches at the average rate: ${a.effective_batch} (full batches of ${i.batch} while a backlog drains)`);
  if (plan.cost_ratio !== null) lines.push(`  cost: sync needs ${plan.cost_ratio.toFixed(2)}x the worker-hours of async`);
  if (a.blocking_at_peak_without_queue !== null && a.workers !== null) {
    lines.push(`  without the queue, ${a.workers} workers would turn away ${percent(a.blocking_at_peak_without_queue)} of requests at the peak`);
  }
  lines.push(`  latency model: ${a.latency_model}`, '', 'Assumptions', ...plan.assumptions.map((s) => `  - ${s}`));
  if (!plan.feasible) lines.push('', `NOT FEASIBLE: ${plan.reason ?? 'no worker count meets the targets'}`);
  return `${lines.join('\n')}\n`;
}

function table(rows: readonly (readonly [string, string, string])[]): string[] {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const w2 = Math.max(...rows.map((r) => r[2].length));
  return rows.map(([l, s, a]) => `  ${l.padEnd(w0)}   ${s.padStart(w1)}   ${a.padStart(w2)}`);
}

function constraintName(c: Constraint): string {
  return { utilization: 'utilization < 1', p99: 'the p99 target', catch_up: 'the catch-up target' }[c];
}

function opt<T>(x: T | null, show: (x: T) => string = String, none = '-'): string {
  return x === null ? none : show(x);
}

/** Three significant figures, no exponent for ordinary sizes. */
export function num(x: number): string {
  if (x === 0) return '0';
  if (Math.abs(x) >= 1000) return Math.round(x).toString();
  return Number(x.toPrecision(3)).toString();
}

function ms(x: number): string {
  return `${num(x)} ms`;
}

function seconds(x: number): string {
  return `${num(x)} s`;
}

/** A probability as a percentage; tiny ones in scientific notation so they do not read as 0. */
export function percent(p: number): string {
  if (p === 0) return '0';
  if (p >= 1e-6) return `${num(p * 100)}%`;
  return `${(p * 100).toExponential(1)}%`;
}
