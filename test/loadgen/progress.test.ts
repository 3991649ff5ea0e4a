import { describe, expect, it } from 'vitest';
import type { HttpClient } from '../../src/loadgen/http-client.js';
import { formatProgress, type ProgressSnapshot } from '../../src/loadgen/progress.js';
import { ModelSampler } from '../../src/loadgen/sampler.js';

const snapshot: ProgressSnapshot = {
  elapsed_s: 12,
  phase: 'sending',
  sent: 120,
  answered: 30,
  accepted: 28,
  rejected: 1,
  errors: 1,
  completed: 28,
  in_flight: 90,
  backlog: 85,
  recent_p50_ms: 2100.4,
};

describe('the progress line', () => {
  it('shows accepted as part of the answered POSTs, beside what is still in flight', () => {
    // With --client wait a POST is answered only when its result comes: 90 are held, not "unaccepted".
    expect(formatProgress(snapshot)).toBe(
      '  12s sent 120 answered 30 (accepted 28 rejected 1 errors 1) completed 28 in flight 90 backlog 85 p50(5s) 2100 ms',
    );
    expect(formatProgress({ ...snapshot, phase: 'draining', errors: 0, answered: 29, backlog: null, recent_p50_ms: null })).toBe(
      '  12s draining sent 120 answered 29 (accepted 28 rejected 1) completed 28 in flight 90 backlog ? p50(5s) -',
    );
  });
});

describe('the model sampler', () => {
  it('keeps the reason of each failed sample, counted', async () => {
    const answers = [
      { status: 503, headers: {}, body: JSON.stringify({ code: 'SPILLWAY_STORE_UNAVAILABLE', detail: 'the result store did not answer' }) },
      { status: 503, headers: {}, body: JSON.stringify({ code: 'SPILLWAY_STORE_UNAVAILABLE', detail: 'the result store did not answer' }) },
      { status: 502, headers: {}, body: 'Bad Gateway' },
    ];
    const http = {
      url: (path: string) => `http://gw/${path}`,
      request: () => Promise.resolve(answers.shift()),
    } as unknown as HttpClient;
    const sampler = new ModelSampler({ http, model: 'm', interval_ms: 1000, clock: () => 0 });
    for (let i = 0; i < 3; i++) await sampler.stop();
    expect(Object.fromEntries(sampler.failures)).toEqual({
      'GET http://gw/v1/models/m answered 503 SPILLWAY_STORE_UNAVAILABLE: the result store did not answer': 2,
      'GET http://gw/v1/models/m answered 502: Bad Gateway': 1,
    });
  });
});
