import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderMixHtml } from '../../src/loadgen/mix-html-report.js';
import { resolveMix, type MixOptions } from '../../src/loadgen/mix-options.js';
import { buildMixReport } from '../../src/loadgen/mix-report.js';
import { writeRecordsCsv } from '../../src/loadgen/records-csv.js';
import { buildReport, formatReportJson } from '../../src/loadgen/report.js';
import { Fate, Outcome, RequestLog } from '../../src/loadgen/request-log.js';
import type { RunResult } from '../../src/loadgen/runner.js';

function mix(): MixOptions {
  const file = join(mkdtempSync(join(tmpdir(), 'spillway-mix-')), 'mix.json');
  writeFileSync(file, JSON.stringify({ tenants: [{ name: 'A', rate: 10 }, { name: 'B', profile: 'burst', rate: 1, 'spike-rate': 5, 'spike-at': 1, 'spike-for': 1 }] }));
  return resolveMix({ target: 'http://127.0.0.1:9', model: 'sleep', duration: '3', mix: file }, {});
}

/** A run whose requests (scheduled at `times`, seconds) all succeed after `latency` ms, but for one refused with 403. */
function fakeRun(times: readonly number[], latency: number, phaseOf: (t_s: number) => number): RunResult {
  const log = new RequestLog();
  times.forEach((t_s, k) => {
    const i = log.add(t_s * 1000, phaseOf(t_s));
    log.sent[i] = t_s * 1000;
    log.answered[i] = t_s * 1000 + 1;
    if (k === 0) {
      log.setError(i, '403');
      return;
    }
    log.outcome[i] = Outcome.accepted;
    log.fate[i] = Fate.succeeded;
    log.final[i] = t_s * 1000 + latency;
    log.queueMs[i] = latency - 10;
    log.inferenceMs[i] = 10;
  });
  const samples = [0, 1000, 2000, 3000].map((t_ms) => ({ t_ms, queue_depth: 1, slots: 2, workers: 1 }));
  return {
    log,
    samples,
    busy: [],
    workers_without_busy: 0,
    sample_failures: {},
    started_at: '2026-01-01T00:00:00.000Z',
    send_end_ms: 3000,
    deadline_ms: 123_000,
    end_ms: 3500,
    drain_timed_out: false,
    interrupted: false,
  };
}

describe('the mix report', () => {
  const m = mix();
  const [a, b] = m.tenants.map((t) => t.options);
  const runs = [fakeRun([0.1, 0.5, 1.5, 2.5], 40, (t) => a!.profile.phaseIndex(t)), fakeRun([0.2, 1.2, 1.4, 2.2], 900, (t) => b!.profile.phaseIndex(t))];
  const report = buildMixReport(m, runs);

  it('has each tenant\'s report as a run of its profile alone would, under the shared settings', () => {
    expect(report).toMatchObject({ report_version: 1, kind: 'mix', target: 'http://127.0.0.1:9', model: 'sleep', mix: m.file, duration_s: 3, elapsed_s: 3.5, reconciles: true });
    expect(report.settings).toMatchObject({ mix: m.file, client: 'wait', drain_timeout: 120 });
    expect(report.settings).not.toHaveProperty('profile');
    expect(Object.keys(report.tenants)).toEqual(['A', 'B']);
    expect(report.tenants['A']).toEqual(buildReport(a!, runs[0]!));
    expect(report.tenants['B']).toMatchObject({ profile: 'burst', sent: 4, errored: 1, completed: 3, errors: { '403': 1 } });
    expect(Object.keys(report.tenants['B']!.phases)).toEqual(['before', 'during', 'after']);
    expect(report.tenants['B']!.settings).toMatchObject({ tenant: 'B', profile: 'burst', seed: 2 });
  });

  it('notes requests refused for their key', () => {
    expect(report.tenants['A']!.notes.join(' ')).toContain('1 requests were refused for their API key');
  });

  it('writes JSON with one line per timeline second and sample, in every tenant', () => {
    const text = formatReportJson(report);
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(report)));
    expect(text.split('\n').filter((l) => /^ {8}\{"t":/.test(l))).toHaveLength(8);
    expect(text.split('\n').filter((l) => /^ {8}\{"t_s":/.test(l))).toHaveLength(8);
  });

  it('renders one page: the tenants compared, then each one\'s section; nothing loaded from elsewhere', () => {
    const html = renderMixHtml(report);
    expect(html).toContain('<h1>Spillway bench: sleep, 2 tenants</h1>');
    const table = html.slice(html.indexOf('<h2>Tenants</h2>'), html.indexOf('<section'));
    for (const head of ['sent', 'completed', 'lost', 'latency p50 ms', 'latency p99 ms', 'queue wait p99 ms']) expect(table).toContain(`<th>${head}</th>`);
    expect(table).toContain('<td><a href="#tenant-A">A</a></td><td>steady</td><td>4</td>');
    expect(html).toContain('<section id="tenant-B">\n<h2>Tenant B: burst profile</h2>');
    expect(html.match(/<svg/g)?.length).toBe(12);
    expect(html).toContain('drain s: from the spike');
    expect(html).not.toMatch(/<script|<link|src=|@import|url\(/i);
  });
});

describe('records of a mix', () => {
  it('are one CSV with a tenant column, request numbers counting per tenant', async () => {
    const log = (n: number) => {
      const l = new RequestLog();
      for (let k = 0; k < n; k++) l.add(k * 100, 0);
      return l;
    };
    const phases = [{ name: 'all', windows: [{ from_s: 0, to_s: 1 }] }];
    const file = join(mkdtempSync(join(tmpdir(), 'spillway-records-')), 'r.csv');
    await writeRecordsCsv(file, [
      { tenant: 'A', log: log(2), phases },
      { tenant: 'B', log: log(1), phases },
    ]);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines[0]).toMatch(/^tenant,request,phase,/);
    expect(lines.slice(1).map((l) => l.split(',').slice(0, 3).join(','))).toEqual(['A,0,all', 'A,1,all', 'B,0,all']);
    await writeRecordsCsv(file, [{ log: log(1), phases }]);
    expect(readFileSync(file, 'utf8')).toMatch(/^request,phase,/);
  });
});
