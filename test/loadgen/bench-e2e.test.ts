import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { burstProfile } from '../../src/loadgen/profiles.js';
import { buildSchedule } from '../../src/loadgen/schedule.js';
import { modelRepo } from '../helpers/model-repo.js';
import { spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';
import { bench, expectReconciled } from './bench-run.js';

describe('spillway bench against a real spillway serve', () => {
  let serve: SpillwayProcess;

  beforeAll(async () => {
    // Two slots of 50 ms: about 40 requests/s, so a spike of 120/s builds a backlog.
    const models = modelRepo({ sleep: { per_batch_ms: 50, concurrency: 2 } });
    serve = await spawnSpillway(['serve', '--port', '0', '--data', mkdtempSync(join(tmpdir(), 'spillway-bench-data-')), '--models', models]);
  });
  afterAll(async () => {
    await serve?.kill('SIGTERM');
  });

  it('runs a burst past capacity: a backlog forms and drains, and every request is accounted for', async () => {
    const shape = ['--profile', 'burst', '--rate', '10', '--spike-rate', '120', '--spike-at', '1', '--spike-for', '1.5', '--duration', '4'];
    const { code, stderr, report, dir } = await bench([
      '--target', serve.url, '--model', 'sleep', ...shape, '--seed', '42', '--sample-ms', '250', '--drain-timeout', '60',
    ]);
    expect(code).toBe(0);
    const r = report!;
    expectReconciled(r);
    // The run sent exactly the schedule the seed fixes.
    const schedule = buildSchedule(burstProfile({ rate: 10, spike_rate: 120, spike_at_s: 1, spike_for_s: 1.5, duration_s: 4 }), { process: 'poisson', seed: 42 });
    expect(r.sent).toBe(schedule.length);
    expect(r.phases['during']?.sent).toBe(schedule.filter((t) => t >= 1 && t < 2.5).length);
    // A queue turns nobody away and loses nothing.
    expect(r).toMatchObject({ rejected: 0, errored: 0, lost: 0 });
    expect(r.completed).toBe(r.sent);
    expect(Object.keys(r.phases)).toEqual(['before', 'during', 'after']);
    expect(r.backlog_peak).toBeGreaterThan(0);
    expect(r.drain_s).not.toBeNull();
    expect(r.drain_s!).toBeGreaterThanOrEqual(0);
    expect(r.worker_seconds!).toBeGreaterThan(0);
    expect(r.slots_peak).toBe(2);
    expect(r.inference_ms.mean!).toBeGreaterThan(0);
    expect(r.queue_ms.count).toBe(r.completed);
    expect(r.send_lag_ms.count).toBe(r.sent);
    expect(r.settings).toMatchObject({ profile: 'burst', rate: 10, spike_rate: 120, seed: 42, client: 'wait' });
    // Progress went to stderr; the HTML report was written beside the JSON.
    expect(stderr).toMatch(/sent \d+ answered \d+ \(accepted \d+ rejected \d+\) completed \d+ in flight \d+ backlog/);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|src=|url\(/i);
  });

  it('follows requests by polling with --client poll', async () => {
    const { code, report } = await bench([
      '--target', serve.url, '--model', 'sleep', '--profile', 'steady', '--rate', '20', '--duration', '1', '--client', 'poll', '--poll-ms', '50', '--quiet',
    ]);
    expect(code).toBe(0);
    expectReconciled(report!);
    expect(report!.sent).toBeGreaterThan(0);
    expect(report!.completed).toBe(report!.sent);
    expect(Object.keys(report!.phases)).toEqual(['all']);
  });

  it('counts accepted requests with no result by the drain deadline as lost', async () => {
    // Polls start long after the deadline, so accepted requests cannot be seen to finish.
    const { code, report } = await bench([
      '--target', serve.url, '--model', 'sleep', '--profile', 'steady', '--arrivals', 'uniform', '--rate', '10', '--duration', '1',
      '--client', 'poll', '--poll-ms', '60000', '--drain-timeout', '0.5', '--quiet',
    ]);
    expect(code).toBe(0);
    const r = report!;
    expectReconciled(r);
    expect(r.sent).toBe(10);
    expect(r.lost).toBeGreaterThan(0);
    expect(r.drain_timed_out).toBe(true);
  });

  it('fails fast on a model the target does not have, exit 1', async () => {
    const { code, stderr, report } = await bench(['--target', serve.url, '--model', 'nope', '--rate', '1', '--duration', '1']);
    expect(code).toBe(1);
    expect(stderr).toContain('no model named "nope"');
    expect(report).toBeUndefined();
  });
});

describe('spillway bench against a synchronous deployment', () => {
  it('counts the 429s of saturated workers as rejected', async () => {
    const models = modelRepo({ sleep: { dispatch: 'sync', per_batch_ms: 100, concurrency: 1 } });
    const serve = await spawnSpillway(['serve', '--port', '0', '--data', mkdtempSync(join(tmpdir(), 'spillway-bench-data-')), '--models', models]);
    try {
      // One slot of 100 ms is 10 requests/s; 40/s must find it busy.
      const { code, report } = await bench([
        '--target', serve.url, '--model', 'sleep', '--profile', 'steady', '--arrivals', 'uniform', '--rate', '40', '--duration', '1', '--quiet',
      ]);
      expect(code).toBe(0);
      const r = report!;
      expectReconciled(r);
      expect(r.sent).toBe(40);
      expect(r.rejected).toBeGreaterThan(0);
      expect(r.lost).toBe(0);
    } finally {
      await serve.kill('SIGTERM');
    }
  });
});
