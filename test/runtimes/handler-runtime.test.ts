import { describe, expect, it } from 'vitest';
import { loadModelRepository } from '../../src/models/model-repository.js';
import { loadRuntime } from '../../src/runtimes/load-runtime.js';
import { StepStopwatch } from '../../src/runtimes/step-stopwatch.js';
import { modelRepo } from '../helpers/model-repo.js';

const repo = loadModelRepository(modelRepo({ fixtures: ['staged'] }));
const signal = new AbortController().signal;

describe('handler runtime steps', () => {
  it('runs preprocess, predictBatch and postprocess in turn, failing only the request a hook refused', async () => {
    const runtime = await loadRuntime(repo.models.get('staged')!);
    const timer = new StepStopwatch();
    const outcomes = await runtime.predict(
      [{ value: 1 }, { value: 2, fail: 'preprocess' }, { value: 3, fail: 'postprocess' }, { value: 4 }],
      { signal, timer },
    );
    expect(outcomes.map((o) => (o.ok ? o.output : o.error.message))).toEqual([
      { doubled: 2, postprocessed: true },
      'preprocess refused it',
      'postprocess refused it',
      { doubled: 8, postprocessed: true },
    ]);
    for (const step of ['preprocess', 'inference', 'postprocess'] as const) expect(timer.ms[step]).toBeGreaterThanOrEqual(0);
    await runtime.close();
  });

  it('a batch every input of which fails preprocessing never reaches the model', async () => {
    const runtime = await loadRuntime(repo.models.get('staged')!);
    const timer = new StepStopwatch();
    const outcomes = await runtime.predict([{ value: 1, fail: 'preprocess' }], { signal, timer });
    expect(outcomes[0]?.ok).toBe(false);
    expect(timer.ms.inference).toBeUndefined();
    await runtime.close();
  });

  it('a handler without hooks reports inference only', async () => {
    const runtime = await loadRuntime(repo.models.get('echo')!);
    const timer = new StepStopwatch();
    const outcomes = await runtime.predict([{ a: 1 }, 'b'], { signal, timer });
    expect(outcomes).toEqual([{ ok: true, output: { a: 1 } }, { ok: true, output: 'b' }]);
    expect(Object.keys(timer.ms)).toEqual(['inference']);
    expect(timer.ms.inference).toBeGreaterThanOrEqual(0);
    await runtime.close();
  });
});
