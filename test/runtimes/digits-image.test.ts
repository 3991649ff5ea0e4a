import pngjs from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelRuntime } from '../../src/runtimes/runtime.js';
import { loadRuntime } from '../../src/runtimes/load-runtime.js';
import { StepStopwatch } from '../../src/runtimes/step-stopwatch.js';
import { outputsOf, pngBase64, pngSamples, repo, signal, type PngSample, type TopClass } from '../helpers/digits-image.js';
import { interlacedGreyPng, sixteenBitGreyPng } from '../helpers/png-file.js';

/**
 * The digits-image demo chained by hand, each model through its real runtime: a PNG goes
 * through digits-preprocess, the digits ONNX model and digits-top3, as a pipeline will run them.
 */
let preprocess: ModelRuntime;
let digits: ModelRuntime;
let top3: ModelRuntime;

beforeAll(async () => {
  const load = (name: string) => loadRuntime(repo.models.get(name)!);
  [preprocess, digits, top3] = await Promise.all([load('digits-preprocess'), load('digits'), load('digits-top3')]);
});
afterAll(async () => {
  await Promise.all([preprocess, digits, top3].map((r) => r.close()));
});

async function grids(images: readonly string[]): Promise<number[][]> {
  return outputsOf<number[]>(await preprocess.predict(images.map((image) => ({ image })), { signal }));
}

/** Where a sample's ink starts and ends, in columns of its 8×8 grid. */
function inkColumns(sample: PngSample): { left: number; right: number } {
  const columns = [0, 1, 2, 3, 4, 5, 6, 7].filter((x) => [0, 1, 2, 3, 4, 5, 6, 7].some((y) => sample.pixels[y * 8 + x]! > 0));
  return { left: columns[0]!, right: columns.at(-1)! };
}

/**
 * What preprocessing a losslessly rendered sample must give: its own 64 counts, with the ink
 * (W columns wide) starting at column ceil((8 − W) / 2), the digits data's commonest place for
 * ink that wide (where an 8×8 row had it is lost once the picture is cropped), and stretched so
 * the strongest cell is 16.
 */
function expectedGrid(sample: PngSample): { grid: number[]; shift: number } {
  const { left, right } = inkColumns(sample);
  const shift = Math.ceil((8 - (right - left + 1)) / 2) - left;
  const strongest = Math.max(...sample.pixels);
  const grid = sample.pixels.map((_, k) => {
    const x = (k % 8) - shift;
    return x >= 0 && x < 8 ? Math.round((16 * sample.pixels[k - shift]!) / strongest) : 0;
  });
  return { grid, shift };
}

describe('digits-image: preprocess → digits → top3 on the sample PNGs', () => {
  it('loads the two handler models beside the demo models', () => {
    expect(repo.failures).toEqual([]);
    expect([...repo.models.keys()]).toEqual(expect.arrayContaining(['digits-preprocess', 'digits-top3']));
    expect(pngSamples.length).toBeGreaterThanOrEqual(20);
  });

  it('classifies the samples: top-1 at least 80 %, top-3 at least 90 %', async () => {
    const timer = new StepStopwatch();
    const inputs = pngSamples.map((s) => ({ image: pngBase64(s) }));
    const features = outputsOf<number[]>(await preprocess.predict(inputs, { signal, timer }));
    // Decoding is preprocess, reframing is inference: each is timed on its own.
    expect(Object.keys(timer.ms).sort()).toEqual(['inference', 'preprocess']);
    for (const row of features) {
      expect(row).toHaveLength(64);
      expect(row.every((v) => Number.isInteger(v) && v >= 0 && v <= 16)).toBe(true);
    }
    // The preprocess output is, unchanged, the digits model's one-row input.
    const classified = outputsOf<{ label: string; probabilities: Record<string, number> }>(await digits.predict(features, { signal }));
    const ranked = outputsOf<{ top: TopClass[] }>(await top3.predict(classified, { signal }));
    const truth = pngSamples.map((s) => String(s.label));
    const top1 = ranked.filter((r, i) => r.top[0]!.label === truth[i]).length;
    const inTop3 = ranked.filter((r, i) => r.top.some((t) => t.label === truth[i])).length;
    // The same digits model on the 8×8 rows the PNGs were rendered from: what preprocessing can at best keep.
    const direct = outputsOf<{ label: string }>(await digits.predict(pngSamples.map((s) => s.pixels), { signal }));
    const directTop1 = direct.filter((d, i) => d.label === truth[i]).length;
    const byStyle = new Map<string, [number, number]>();
    for (const [i, sample] of pngSamples.entries()) {
      const [right, all] = byStyle.get(sample.style) ?? [0, 0];
      byStyle.set(sample.style, [right + (ranked[i]!.top[0]!.label === truth[i] ? 1 : 0), all + 1]);
    }
    const misses = ranked.flatMap((r, i) => (r.top[0]!.label === truth[i] ? [] : [`${pngSamples[i]!.file} → ${r.top[0]!.label}`]));
    console.log(
      `digits-image accuracy on ${truth.length} PNGs: top-1 ${top1}/${truth.length}, top-3 ${inTop3}/${truth.length}; ` +
        `digits on the source 8×8 rows: ${directTop1}/${truth.length}; top-1 by style: ` +
        [...byStyle].map(([style, [right, all]]) => `${style} ${right}/${all}`).join(', ') +
        `; misses: ${misses.slice(0, 20).join(', ') || 'none'}`,
    );
    // Floors under the measured 18/20 and 19/20 (92 % and 98 % on all 450 test rows, see
    // models/digits-image/README.md): room for a retrained model or a changed resampler, none
    // for a preprocessing that has lost the digit, which scores far lower.
    expect(top1 / truth.length).toBeGreaterThanOrEqual(0.8);
    expect(inTop3 / truth.length).toBeGreaterThanOrEqual(0.9);
  });

  it('gives back the original 64 values of a digit rendered losslessly, placed as the digits data places it', async () => {
    const exact = pngSamples.filter((s) => s.exact);
    expect(exact.length).toBeGreaterThanOrEqual(4);
    const rows = await grids(exact.map(pngBase64));
    // Tolerance 0: nothing is resampled, so every count must come back exactly.
    for (const [i, sample] of exact.entries()) expect(rows[i], sample.file).toEqual(expectedGrid(sample).grid);
    // Samples whose ink sits elsewhere are among them, so the placement rule itself is checked too.
    const moved = exact.filter((s) => expectedGrid(s).shift !== 0).length;
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(exact.length);
  });

  it('takes a data URL, base64 wrapped over lines, RGBA, 16-bit and interlaced PNGs alike', async () => {
    const sample = pngSamples.find((s) => s.style === 'grey-8-exact')!;
    const bare = pngBase64(sample);
    const png = pngjs.PNG.sync.read(Buffer.from(bare, 'base64'));
    const grey = Uint8Array.from({ length: 64 }, (_, i) => png.data[4 * i]!);
    const rgba = pngjs.PNG.sync.write(png, { colorType: 6 }).toString('base64');
    const rows = await grids([
      bare,
      `data:image/png;base64,${bare}`,
      bare.replace(/(.{60})/g, '$1\r\n'),
      rgba,
      sixteenBitGreyPng(8, 8, grey).toString('base64'),
      interlacedGreyPng(8, 8, grey).toString('base64'),
    ]);
    for (const row of rows) expect(row).toEqual(expectedGrid(sample).grid);
  });
});
