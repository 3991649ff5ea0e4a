import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelSpec } from '../../src/models/model-config.js';
import { createInputValidator } from '../../src/models/input-validator.js';
import { loadRuntime } from '../../src/runtimes/load-runtime.js';
import type { ModelRuntime } from '../../src/runtimes/runtime.js';
import { failureOf, outputsOf, pngBase64, pngSamples, repo, signal, type TopClass } from '../helpers/digits-image.js';
import { pngFile } from '../helpers/png-file.js';

/** The demo's handlers refusing what they cannot use: at once, for that request only, not retryably. */
const preprocessSpec = repo.models.get('digits-preprocess')!;
const top3Spec = repo.models.get('digits-top3')!;
let preprocess: ModelRuntime;
let top3: ModelRuntime;

beforeAll(async () => {
  [preprocess, top3] = await Promise.all([loadRuntime(preprocessSpec), loadRuntime(top3Spec)]);
});
afterAll(async () => {
  await Promise.all([preprocess.close(), top3.close()]);
});

function withParameters(spec: ModelSpec, parameters: Record<string, unknown>): ModelSpec {
  return { ...spec, config: { ...spec.config, parameters: { ...spec.config.parameters, ...parameters } } };
}

const b64 = (bytes: Buffer) => bytes.toString('base64');
/** An 8-bit grey PNG that is all one level. */
const flat = (width: number, height: number, level: number) =>
  pngFile({ width, height }, Buffer.concat(Array.from({ length: height }, () => Buffer.from([0, ...new Array<number>(width).fill(level)]))));

describe('digits-preprocess refuses bad images with a clear, non-retryable model error', () => {
  const good = pngBase64(pngSamples[0]!);
  const goodBytes = Buffer.from(good, 'base64');
  const cases: [string, unknown, RegExp][] = [
    ['not base64', { image: 'this is not base64!' }, /invalid image: `image` is not base64/],
    ['a data URL of another format', { image: 'data:image/jpeg;base64,/9j/4AAQ' }, /only PNG is taken/],
    ['base64 of something else', { image: b64(Buffer.from('just some text, long enough to hold a PNG header')) }, /not a PNG/],
    ['a truncated PNG', { image: b64(goodBytes.subarray(0, 60)) }, /the PNG cannot be decoded/],
    ['a PNG with a corrupt CRC', { image: b64(Buffer.concat([goodBytes.subarray(0, 30), Buffer.from([0xff]), goodBytes.subarray(31)])) }, /cannot be decoded/],
    // 5000×5000 of zeros deflates to a few KB: refused from the header, before it is inflated.
    ['too many pixels', { image: b64(pngFile({ width: 5000, height: 5000, bitDepth: 1 }, Buffer.alloc(5000 * 626))) }, /5000×5000; the most is 4096×4096/],
    // 100 KB of zeros claiming to be 16×16 interlaced: pngjs alone would inflate it unbounded.
    ['an interlaced PNG that inflates past its size', { image: b64(pngFile({ width: 16, height: 16, interlaced: true }, Buffer.alloc(100_000))) }, /interlaced PNG holds more data/],
    ['an image of one colour', { image: b64(flat(32, 32, 200)) }, /holds no digit/],
    ['no image field', { picture: good }, /must be an object/],
    ['not an object', good, /must be an object/],
    ['an empty image', { image: '' }, /non-empty base64 string/],
  ];
  for (const [what, input, message] of cases) {
    it(`refuses ${what}`, async () => {
      const [outcome] = await preprocess.predict([input], { signal });
      const error = failureOf(outcome);
      expect(error).toMatchObject({ code: 'SPILLWAY_MODEL_FAILED', retryable: false });
      expect(error.message).toMatch(message);
    });
  }

  it('refuses a PNG over max_png_bytes before decoding it, and fails only that request of a batch', async () => {
    const small = await loadRuntime(withParameters(preprocessSpec, { max_png_bytes: 200 }));
    const big = pngSamples.find((s) => Buffer.from(pngBase64(s), 'base64').length > 200)!;
    const tiny = pngSamples.find((s) => Buffer.from(pngBase64(s), 'base64').length <= 200)!;
    const [refused, served] = await small.predict([{ image: pngBase64(big) }, { image: pngBase64(tiny) }], { signal });
    expect(failureOf(refused)).toMatchObject({ message: 'invalid image: the PNG is over 200 bytes', retryable: false });
    expect(served?.ok).toBe(true);
    await small.close();
  });

  it('declares its input so the gateway refuses a wrong shape before queueing it', () => {
    const validate = createInputValidator(preprocessSpec);
    expect(validate({ image: 'iVBORw0KGgo=' })).toEqual([]);
    expect(validate({}).map((d) => d.pointer)).toEqual(['/input']);
    expect(validate({ image: 42, extra: true }).length).toBe(2);
    expect(validate({ image: 'x'.repeat(1_400_000) }).map((d) => d.pointer)).toEqual(['/input/image']);
  });
});

describe('digits-top3', () => {
  const probabilities = { '0': 0.01, '1': 0.3, '2': 0.05, '3': 0.3, '4': 0.02, '5': 0.25, '6': 0.01, '7': 0.02, '8': 0.03, '9': 0.01 };

  it('returns the three likeliest classes, likeliest first, ties to the smaller label', async () => {
    const [ranked] = outputsOf<{ top: TopClass[] }>(await top3.predict([{ label: '1', class_index: 1, probabilities }], { signal }));
    expect(ranked).toEqual({
      top: [
        { label: '1', probability: 0.3 },
        { label: '3', probability: 0.3 },
        { label: '5', probability: 0.25 },
      ],
    });
  });

  it('returns as many as there are when fewer than three, and k of them when k is set', async () => {
    const [few] = outputsOf<{ top: TopClass[] }>(await top3.predict([{ probabilities: { a: 0.4, b: 0.6 } }], { signal }));
    expect(few!.top.map((t) => t.label)).toEqual(['b', 'a']);
    const five = await loadRuntime(withParameters(top3Spec, { k: 5 }));
    const [ranked] = outputsOf<{ top: TopClass[] }>(await five.predict([{ probabilities }], { signal }));
    expect(ranked!.top.map((t) => t.label)).toEqual(['1', '3', '5', '2', '8']);
    await five.close();
  });

  it('refuses input that is not a classifier output, not retryably', async () => {
    const outcomes = await top3.predict([{ label: '3' }, { probabilities: [0.5, 0.5] }, { probabilities: { a: 'high' } }, { probabilities: {} }], {
      signal,
    });
    const messages = outcomes.map((o) => failureOf(o)).map((e) => [e.retryable, e.message]);
    expect(messages).toEqual([
      [false, expect.stringMatching(/expected the digits model's output/)],
      [false, 'invalid input: `probabilities` must be an object of label → probability'],
      [false, 'invalid input: the probability of "a" is not a number'],
      [false, 'invalid input: `probabilities` is empty'],
    ]);
    const validate = createInputValidator(top3Spec);
    expect(validate({ label: '7', class_index: 7, probabilities })).toEqual([]);
    expect(validate({ probabilities: { a: 'x' } }).map((d) => d.pointer)).toEqual(['/input/probabilities/a']);
  });
});
