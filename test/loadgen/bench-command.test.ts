import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BenchUsageError, resolveOptions } from '../../src/loadgen/options.js';
import { benchOutput as bench } from './bench-run.js';

const base = ['--target', 'http://127.0.0.1:1', '--model', 'sleep'];
const burst = [...base, '--profile', 'burst', '--rate', '10', '--spike-rate', '100', '--spike-at', '2', '--spike-for', '1', '--duration', '5'];

afterEach(() => vi.restoreAllMocks());

describe('spillway bench flags', () => {
  it('prints help with every profile and flag', async () => {
    const { code, stdout } = await bench(['--help']);
    expect(code).toBe(0);
    for (const text of ['--target', '--profile', 'burst', 'diurnal', 'replay', '--spike-rate', '--client', '--drain-timeout', '--seed']) {
      expect(stdout).toContain(text);
    }
  });

  it.each([
    [['--profile', 'steady', '--rate', '0', '--duration', '5'], '--rate must be a number above 0 (got "0")'],
    [['--profile', 'steady', '--rate', '-3', '--duration', '5'], '--rate must be a number above 0'],
    [['--profile', 'steady', '--rate', '10', '--duration', '0'], '--duration must be a number above 0'],
    [['--profile', 'steady', '--duration', '5'], '--rate is required for --profile steady'],
    [['--profile', 'spiky', '--rate', '10', '--duration', '5'], '--profile must be one of steady, burst, diurnal, replay (got "spiky")'],
    [['--profile', 'burst', '--rate', '10', '--spike-rate', '100', '--spike-at', '2', '--duration', '5'], '--spike-for is required for --profile burst'],
    [['--profile', 'burst', '--rate', '10', '--spike-rate', '0', '--spike-at', '2', '--spike-for', '1', '--duration', '5'], '--spike-rate must be a number above 0'],
    [['--profile', 'burst', '--rate', '10', '--spike-rate', '100', '--spike-at', '6', '--spike-for', '1', '--duration', '5'], '--spike-at 6 starts at or after the end of the run'],
    [['--profile', 'burst', '--rate', '10', '--spike-rate', '100', '--spike-at', '1', '--spike-for', '10', '--duration', '5'], '--spike-for 10 runs past the end of the run'],
    [['--profile', 'diurnal', '--rate', '10', '--amplitude', '1.5', '--duration', '5'], '--amplitude must be a fraction'],
    [['--profile', 'diurnal', '--rate', '10', '--amplitude', '20/s', '--duration', '5'], '--amplitude must be a fraction'],
    [['--profile', 'replay'], '--replay is required for --profile replay'],
    [['--profile', 'steady', '--rate', '10', '--duration', '5', '--spike-rate', '50'], '--spike-rate does not apply to --profile steady'],
    [['--profile', 'steady', '--rate', '10', '--duration', '5', '--client', 'push'], '--client must be one of wait, poll'],
    [['--profile', 'steady', '--rate', '10', '--duration', '5', '--input', '{oops'], '--input is not valid JSON'],
  ])('refuses %j with one line naming the flag, exit 2', async (args, message) => {
    const { code, stderr } = await bench([...base, ...args]);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a missing target or model, and unknown flags, exit 2', async () => {
    expect(await bench(['--model', 'sleep', '--rate', '1', '--duration', '1'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--target is required') });
    expect(await bench(['--target', 'http://x', '--rate', '1', '--duration', '1'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--model is required') });
    expect(await bench(['--target', 'ftp://x', '--model', 'm', '--rate', '1', '--duration', '1'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--target must be an http') });
    expect(await bench([...base, '--colour', 'blue'])).toMatchObject({ code: 2, stderr: expect.stringContaining("'--colour'") });
  });

  it('refuses a report path in a folder that does not exist, before the run', async () => {
    const { code, stderr } = await bench([...burst, '--out', '/nonexistent-folder/r.json']);
    expect(code).toBe(2);
    expect(stderr).toContain('--out /nonexistent-folder/r.json');
  });

  it('fails fast on an unreachable target, naming the address it tried, exit 1', async () => {
    const { code, stderr } = await bench([...burst, '--out', join(mkdtempSync(join(tmpdir(), 'spillway-bench-')), 'r.json')]);
    expect(code).toBe(1);
    expect(stderr).toContain('cannot reach http://127.0.0.1:1/v1/models/sleep');
  });
});

describe('resolved options', () => {
  it('fills defaults and derives the HTML path from --out', () => {
    const o = resolveOptions({ target: 'http://127.0.0.1:8080/', model: 'sleep', rate: '5', duration: '10', out: '/tmp/x/run.json' });
    expect(o).toMatchObject({ target: 'http://127.0.0.1:8080', arrivals: 'poisson', seed: 1, client: 'wait', wait_s: 60, drain_timeout_s: 120, sample_ms: 1000 });
    expect(o.html).toBe('/tmp/x/run.html');
    expect(o.body).toBe('{"input":{}}');
    expect(o.settings).toMatchObject({ profile: 'steady', rate: 5, duration: 10, client: 'wait' });
    expect(resolveOptions({ target: 'http://h', model: 'm', rate: '5', duration: '10', 'no-html': true }).html).toBeUndefined();
  });

  it('takes the diurnal amplitude as a fraction, a percentage or a rate', () => {
    const amp = (a: string) => resolveOptions({ target: 'http://h', model: 'm', profile: 'diurnal', rate: '40', duration: '10', amplitude: a }).settings['amplitude'];
    expect([amp('0.25'), amp('25%'), amp('10/s')]).toEqual([0.25, 0.25, 0.25]);
  });

  it('replays a file, its duration the last arrival unless given', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'spillway-bench-')), 'arrivals.txt');
    writeFileSync(file, '0\n0.5\n2.5\n');
    const o = resolveOptions({ target: 'http://h', model: 'm', profile: 'replay', replay: file });
    expect(o.profile.duration_s).toBe(2.5);
    expect(() => resolveOptions({ target: 'http://h', model: 'm', profile: 'replay', replay: `${file}.missing` })).toThrow(BenchUsageError);
  });
});

describe('the wait and the drain deadline', () => {
  const o = (extra: Record<string, string>) => resolveOptions({ target: 'http://h', model: 'm', rate: '5', duration: '10', ...extra });

  it('keeps the default wait inside the drain timeout', () => {
    expect(o({}).wait_s).toBe(60);
    expect(o({ 'drain-timeout': '30' }).wait_s).toBe(15);
  });

  it('refuses an explicit wait as long as the drain timeout', () => {
    expect(() => o({ wait: '30', 'drain-timeout': '30' })).toThrow('--wait 30 must be shorter than --drain-timeout 30');
    expect(o({ wait: '30', 'drain-timeout': '30', client: 'poll' }).client).toBe('poll');
  });
});
