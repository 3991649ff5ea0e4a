import type { MixOptions } from './mix-options.js';
import { buildReport, type BenchReport } from './report.js';
import type { RunResult } from './runner.js';

/**
 * The report of a --mix run: what the tenants shared, and each tenant's report, exactly as a
 * run of its profile alone would have it (the backlog, worker and sample figures are the
 * model's, so the same in every tenant's).
 */
export interface MixReport {
  readonly report_version: 1;
  readonly kind: 'mix';
  readonly started_at: string;
  readonly target: string;
  readonly model: string;
  /** The --mix file. */
  readonly mix: string;
  /** The longest tenant's arrival window. */
  readonly duration_s: number;
  readonly elapsed_s: number;
  /** Every tenant's counts reconcile. */
  readonly reconciles: boolean;
  /** The settings every tenant shares; each tenant's report has its own in full. */
  readonly settings: Readonly<Record<string, string | number | boolean | null>>;
  /** By tenant name, in the file's order (but for names of digits alone, which JSON objects put first). */
  readonly tenants: Readonly<Record<string, BenchReport>>;
}

/** `runs` are the tenants' results, in the order of `mix.tenants`. */
export function buildMixReport(mix: MixOptions, runs: readonly RunResult[]): MixReport {
  const tenants: Record<string, BenchReport> = {};
  mix.tenants.forEach((t, k) => {
    const run = runs[k];
    if (run === undefined) throw new Error(`buildMixReport: no result for tenant ${t.name}`);
    tenants[t.name] = buildReport(t.options, run);
  });
  const reports = Object.values(tenants);
  return {
    report_version: 1,
    kind: 'mix',
    started_at: runs[0]?.started_at ?? '',
    target: mix.shared.target,
    model: mix.shared.model,
    mix: mix.file,
    duration_s: Math.max(...reports.map((r) => r.duration_s)),
    elapsed_s: Math.max(...reports.map((r) => r.elapsed_s)),
    reconciles: reports.every((r) => r.reconciles),
    settings: { mix: mix.file, ...mix.shared.settings },
    tenants,
  };
}
