// @ts-check
/**
 * The last step of the digits-image demo: the `digits` model's answer
 * `{ label, probabilities: { "0": p, …, "9": p } }` in, its three likeliest classes out as
 * `{ top: [{ label, probability }, …] }`, likeliest first. Ties go to the smaller label, so the
 * same probabilities always give the same order.
 */

/** How many classes to return unless the model's `k` parameter says otherwise. */
const defaultK = 3;

/** @type {NonNullable<import('spillway').HandlerModule['predict']>} */
export function predict(input, { parameters }) {
  const probabilities = probabilitiesOf(input);
  const k = typeof parameters['k'] === 'number' && Number.isInteger(parameters['k']) && parameters['k'] > 0 ? parameters['k'] : defaultK;
  const top = Object.entries(probabilities)
    .map(([label, probability]) => ({ label, probability }))
    .sort((a, b) => b.probability - a.probability || a.label.localeCompare(b.label, 'en', { numeric: true }))
    .slice(0, k);
  return { top };
}

/**
 * The class → probability map, checked: the gateway checks input_schema, but a pipeline step
 * may hand this model another model's output directly.
 */
function probabilitiesOf(/** @type {unknown} */ input) {
  const refuse = (/** @type {string} */ why) => Object.assign(new Error(`invalid input: ${why}`), { retryable: false });
  if (typeof input !== 'object' || input === null || !('probabilities' in input)) {
    throw refuse('expected the digits model\'s output { label, probabilities: { "<label>": <probability>, … } }');
  }
  const { probabilities } = input;
  if (typeof probabilities !== 'object' || probabilities === null || Array.isArray(probabilities)) {
    throw refuse('`probabilities` must be an object of label → probability');
  }
  const entries = Object.entries(probabilities);
  if (entries.length === 0) throw refuse('`probabilities` is empty');
  for (const [label, p] of entries) {
    if (typeof p !== 'number' || !Number.isFinite(p)) throw refuse(`the probability of ${JSON.stringify(label)} is not a number`);
  }
  return /** @type {Record<string, number>} */ (probabilities);
}
