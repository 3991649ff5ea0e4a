import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runPlan } from '../../src/cli/plan-command.js';

const dir = mkdtempSync(join(tmpdir(), 'spillway-plan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the command in-process and captures what it prints. */
async function plan(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await runPlan(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

const worked = ['--rate', '40', '--spike-rate', '160', '--spike-for', '60', '--service-ms', '50', '--p99-ms', '250', '--catch-up', '60'];

describe('spillway plan', () => {
  it('prints a table with both worker counts, the cost ratio and the assumptions', async () => {
    const { code, stdout, stderr } = await plan(worked);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/workers\s+18\s+5/);
    expect(stdout).toContain('3.60x the worker-hours');
    expect(stdout).toContain('set by the catch-up target');
    expect(stdout).toContain('Assumptions');
    expect(stdout).toContain('Poisson arrivals');
  });

  it('prints the plan as JSON with stable snake_case keys', async () => {
    const { code, stdout } = await plan([...worked, '--json', '--concurrency', '2']);
    expect(code).toBe(0);
    const json = JSON.parse(stdout) as Record<string, Record<string, unknown>>;
    expect(Object.keys(json)).toEqual(['inputs', 'service', 'sync', 'async', 'cost_ratio', 'assumptions', 'feasible']);
    expect(json['inputs']).toMatchObject({ rate: 40, spike_rate: 160, spike_for_s: 60, service_ms: 50, per_item_ms: 0, batch: 1, sync_loss: 0.001, concurrency: 2 });
    expect(json['sync']).toMatchObject({ workers: 18, processes: 9 });
    expect(json['async']).toMatchObject({ workers: 5, processes: 3, backlog_peak: 3600, drain_s: 60, utilization: 0.4 });
    for (const key of ['blocking_at_peak', 'blocking_at_average']) expect(typeof json['sync']![key]).toBe('number');
    for (const key of ['mean_wait_ms', 'p99_wait_ms', 'p99_latency_ms']) expect(typeof json['async']![key]).toBe('number');
    expect(json['cost_ratio']).toBe(3.6);
    expect(json['feasible']).toBe(true);
  });

  it('exits 1 with the reason when no worker count meets the p99 target, still printing JSON', async () => {
    const { code, stdout, stderr } = await plan([...worked.slice(0, 8), '--p99-ms', '40', '--catch-up', '60', '--json']);
    expect(code).toBe(1);
    const json = JSON.parse(stdout) as { feasible: boolean; reason: string; async: { workers: number | null } };
    expect(json.feasible).toBe(false);
    expect(json.reason).toContain('below the service time');
    expect(json.async.workers).toBeNull();
    expect(stderr).toContain('below the service time');
  });

  it('exits 1 when the given workers cannot keep up with the average', async () => {
    const { code, stdout, stderr } = await plan([...worked, '--workers', '2']);
    expect(code).toBe(1);
    expect(stdout).toContain('NOT FEASIBLE: utilization >= 1: the queue grows without bound');
    expect(stderr).toContain('utilization >= 1: the queue grows without bound');
  });

  it('takes the service time from a bench report', async () => {
    const report = join(dir, 'report.json');
    writeFileSync(report, JSON.stringify({ inference_ms: { mean: 50, p50: 49, p99: 61 } }));
    const args = ['--rate', '40', '--spike-rate', '160', '--spike-for', '60', '--service-from', report, '--p99-ms', '250', '--catch-up', '60', '--json'];
    const { code, stdout } = await plan(args);
    expect(code).toBe(0);
    const json = JSON.parse(stdout) as { inputs: { service_ms: number; service_from: string }; async: { workers: number } };
    expect(json.inputs).toMatchObject({ service_ms: 50, service_from: report });
    expect(json.async.workers).toBe(5);
  });

  it('prints help with the definitions and exits 0', async () => {
    const { code, stdout } = await plan(['--help']);
    expect(code).toBe(0);
    for (const text of ['--rate', '--spike-rate', '--service-ms', '--per-item-ms', '--batch', '--p99-ms', '--catch-up', '--json', 'one serving slot', 'S(b)', 'Erlang B']) {
      expect(stdout).toContain(text);
    }
  });

  const bad: [string, string[], string][] = [
    ['an unknown flag', [...worked, '--colour', 'blue'], 'unknown flag --colour'],
    ['a stray argument', [...worked, 'now'], 'unexpected argument now'],
    ['a missing rate', worked.slice(2), '--rate is required'],
    ['a zero rate', ['--rate', '0', ...worked.slice(2)], '--rate must be a number > 0, got "0"'],
    ['a negative rate', ['--rate=-5', ...worked.slice(2)], '--rate must be a number > 0, got "-5"'],
    ['a negative rate without =', ['--rate', '-5', ...worked.slice(2)], '--rate needs a value'],
    ['a rate that is not a number', ['--rate', 'lots', ...worked.slice(2)], '--rate must be a number > 0, got "lots"'],
    ['a negative service time', [...worked, '--service-ms=-1'], '--service-ms must be a number >= 0'],
    ['a NaN service time', [...worked, '--service-ms', 'NaN'], '--service-ms must be a number >= 0, got "NaN"'],
    ['a zero service time', [...worked, '--service-ms', '0'], '--service-ms: the service time of one request'],
    ['no service time', [...worked.slice(0, 6), ...worked.slice(8)], '--service-ms is required'],
    ['a spike rate without a duration', ['--rate', '40', '--spike-rate', '160', ...worked.slice(6)], '--spike-rate needs --spike-for'],
    ['a spike duration without a rate', ['--rate', '40', '--spike-for', '60', ...worked.slice(6)], '--spike-for needs --spike-rate'],
    ['a spike below the base rate', ['--rate', '40', '--spike-rate', '20', '--spike-for', '60', ...worked.slice(6)], '--spike-rate (20) is below --rate (40)'],
    ['zero workers', [...worked, '--workers', '0'], '--workers must be an integer >= 1, got "0"'],
    ['a fractional batch', [...worked, '--batch', '1.5'], '--batch must be an integer >= 1, got "1.5"'],
    ['a zero batch', [...worked, '--batch', '0'], '--batch must be an integer >= 1'],
    ['a sync loss of 1', [...worked, '--sync-loss', '1'], '--sync-loss must be a number > 0 and < 1'],
    ['a zero p99 target', [...worked, '--p99-ms', '0'], '--p99-ms must be a number > 0'],
    ['a missing catch-up', worked.slice(0, 10), '--catch-up is required'],
    ['a value on --json', [...worked, '--json=yes'], '--json takes no value'],
    ['an unreadable report', ['--rate', '40', '--service-from', join(dir, 'missing.json'), '--p99-ms', '250', '--catch-up', '60'], '--service-from: cannot read'],
  ];
  it.each(bad)('refuses %s with one line naming the flag and exit code 2', async (_name, args, message) => {
    const { code, stdout, stderr } = await plan(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(message);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('refuses a report without inference_ms.mean', async () => {
    const report = join(dir, 'wrong.json');
    writeFileSync(report, JSON.stringify({ latency_ms: { mean: 3 } }));
    const { code, stderr } = await plan(['--rate', '40', '--service-from', report, '--p99-ms', '250', '--catch-up', '60']);
    expect(code).toBe(2);
    expect(stderr).toContain('has no inference_ms.mean');
  });
});
