import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { loadModelRepository } from '../../src/models/model-repository.js';
import type { Outcome } from '../../src/runtimes/runtime.js';
import { modelsDir } from './paths.js';

/** The digits-image demo's models and sample PNGs, shared by its test files. */
export const repo = loadModelRepository(modelsDir);
export const signal: AbortSignal = new AbortController().signal;

/**
 * The committed twenty, or a folder that `render_digit_pngs.py --all --out DIR` wrote, named by
 * SPILLWAY_DIGITS_SAMPLES, to measure the demo on all 450 test rows.
 */
export const samplesDir = process.env['SPILLWAY_DIGITS_SAMPLES'] ?? join(modelsDir, 'digits-image', 'samples');

/** One entry of models/digits-image/samples/samples.json (written by render_digit_pngs.py). */
export interface PngSample {
  readonly file: string;
  readonly label: number;
  readonly style: string;
  /** Rendered without resampling (or by an integer nearest-neighbour upscale), in grey. */
  readonly exact: boolean;
  /** The 64 values (0–16) of the scikit-learn digit it was rendered from. */
  readonly pixels: readonly number[];
}

export const pngSamples = JSON.parse(readFileSync(join(samplesDir, 'samples.json'), 'utf8')) as PngSample[];

export function pngBase64(sample: PngSample): string {
  return readFileSync(join(samplesDir, sample.file)).toString('base64');
}

export interface TopClass {
  readonly label: string;
  readonly probability: number;
}

/** The outputs of outcomes that must all have succeeded. */
export function outputsOf<T>(outcomes: readonly Outcome[]): T[] {
  return outcomes.map((o) => {
    if (!o.ok) expect.fail(`a step failed: ${o.error.message}`);
    return o.output as T;
  });
}

/** The error of an outcome that must have failed, as the record would carry it. */
export function failureOf(outcome: Outcome | undefined): { code: string; message: string; retryable: boolean } {
  if (outcome === undefined || outcome.ok) return expect.fail('expected the request to fail');
  return { code: outcome.error.code, message: outcome.error.message, retryable: outcome.error.retryable };
}
