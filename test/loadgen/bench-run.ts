import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import { runBench } from '../../src/cli/bench-command.js';
import type { BenchReport } from '../../src/loadgen/report.js';

/** Runs `spillway bench` in this process and returns its exit code and what it wrote. */
export async function benchOutput(args: readonly string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  let stderr = '';
  let stdout = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  try {
    return { code: await runBench(args), stderr, stdout };
  } finally {
    vi.restoreAllMocks();
  }
}

/** {@link benchOutput} with the reports in a fresh folder, and the JSON report read back (if written). */
export async function bench<R = BenchReport>(
  args: readonly string[],
): Promise<{ code: number; stderr: string; stdout: string; report: R | undefined; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-bench-'));
  const out = await benchOutput([...args, '--out', join(dir, 'report.json')]);
  const file = join(dir, 'report.json');
  const report = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as R) : undefined;
  return { ...out, report, dir };
}

const counts = ['sent', 'accepted', 'rejected', 'errored', 'completed', 'lost'] as const;

/** The accounting every report must satisfy, whatever happened in the run. */
export function expectReconciled(r: BenchReport): void {
  expect(r.accepted + r.rejected + r.errored).toBe(r.sent);
  expect(r.completed + r.lost).toBe(r.accepted);
  expect(r.succeeded + r.failed).toBe(r.completed);
  expect(Object.values(r.errors).reduce((a, b) => a + b, 0)).toBe(r.errored);
  expect(r.reconciles).toBe(true);
  for (const key of counts) expect(Object.values(r.phases).reduce((n, p) => n + p[key], 0)).toBe(r[key]);
  for (const p of Object.values(r.phases)) {
    expect(p.accepted + p.rejected + p.errored).toBe(p.sent);
    expect(p.completed + p.lost).toBe(p.accepted);
  }
  expect(r.timeline.reduce((n, s) => n + s.arrivals, 0)).toBe(r.sent);
  expect(r.timeline.reduce((n, s) => n + s.completions, 0)).toBe(r.completed);
  expect(r.timeline.reduce((n, s) => n + s.rejections, 0)).toBe(r.rejected);
}
