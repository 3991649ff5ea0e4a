// @ts-check
/**
 * The digits-image pipeline's three steps in one handler, for bench/pipeline-stages.ts: the same
 * code (the demo models' own modules and the same ONNX file), without the two stream hops.
 */
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { preprocess as decode, predict as toGrid } from '../../../models/digits-preprocess/handler.js';
import { predict as topClasses } from '../../../models/digits-top3/handler.js';

const modelFile = fileURLToPath(new URL('../../../models/digits/model.onnx', import.meta.url));
/** @type {ort.InferenceSession | undefined} */
let session;

export async function load() {
  session = await ort.InferenceSession.create(modelFile, { executionProviders: ['cpu'] });
}

/** @type {NonNullable<import('spillway').HandlerModule['preprocess']>} */
export function preprocess(input, context) {
  return decode(input, context);
}

/** @type {NonNullable<import('spillway').HandlerModule['predictBatch']>} */
export async function predictBatch(images, context) {
  if (session === undefined) throw new Error('not loaded');
  const grids = images.map((image) => /** @type {number[]} */ (toGrid(image, context)));
  const feeds = { float_input: new ort.Tensor('float32', Float32Array.from(grids.flat()), [grids.length, 64]) };
  const { label, probabilities } = await session.run(feeds);
  const probs = /** @type {Float32Array} */ (probabilities?.data);
  return grids.map((_, row) => {
    const p = Object.fromEntries([...probs.subarray(row * 10, row * 10 + 10)].map((v, i) => [String(i), v]));
    return topClasses({ label: String(label?.data[row]), probabilities: p }, context);
  });
}
