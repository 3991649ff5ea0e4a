// @ts-check
/**
 * The first step of the digits-image demo: a PNG of one handwritten digit in, the 64 pixel
 * counts (0–16, row by row) that the `digits` model takes out. Decoding is `preprocess` and the
 * reframing `predict`, so a record's metrics tell a slow decode from a slow resample.
 */
import { digitGrid } from './digit-image.js';
import { decodePng, invalidImage, pngBytes, pngLimits } from './png-input.js';

/**
 * `{ "image": "<base64 PNG or data:image/png;base64,… URL>" }` to 8-bit RGBA pixels.
 *
 * @type {NonNullable<import('spillway').HandlerModule['preprocess']>}
 */
export function preprocess(input, { parameters }) {
  // The gateway checks input_schema; this also guards direct callers such as a pipeline step.
  if (typeof input !== 'object' || input === null || !('image' in input)) {
    throw invalidImage('the input must be an object { "image": "<base64 PNG>" }');
  }
  const limits = pngLimits(parameters);
  return decodePng(pngBytes(input.image, limits), limits);
}

/** @type {NonNullable<import('spillway').HandlerModule['predict']>} */
export function predict(image) {
  return digitGrid(/** @type {import('./png-input.js').RgbaImage} */ (image));
}
