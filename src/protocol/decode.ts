import { envelopeVersion, type RequestEnvelope } from './envelope.js';

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string; readonly id?: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Request topics are open to any producer, so a worker decodes defensively: anything that is
 * not a version-1 envelope is rejected with a reason instead of crashing the worker.
 */
export function decodeRequest(value: string): Decoded<RequestEnvelope> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    return { ok: false, reason: `not JSON: ${(error as Error).message}` };
  }
  if (!isObject(parsed)) return { ok: false, reason: 'not a JSON object' };
  const id = typeof parsed['id'] === 'string' && parsed['id'].length > 0 ? parsed['id'] : undefined;
  const problems: string[] = [];
  if (parsed['v'] !== envelopeVersion) problems.push(`v must be ${envelopeVersion}`);
  if (id === undefined) problems.push('id must be a non-empty string');
  if (typeof parsed['model'] !== 'string') problems.push('model must be a string');
  if (!('input' in parsed)) problems.push('input is missing');
  if (typeof parsed['created_at'] !== 'string' || Number.isNaN(Date.parse(parsed['created_at']))) {
    problems.push('created_at must be an RFC 3339 timestamp');
  }
  if (parsed['metadata'] !== undefined && !isObject(parsed['metadata'])) problems.push('metadata must be an object');
  if (parsed['replay'] !== undefined && !(Number.isInteger(parsed['replay']) && (parsed['replay'] as number) >= 0)) {
    problems.push('replay must be a non-negative integer');
  }
  if (parsed['deadline'] !== undefined && (typeof parsed['deadline'] !== 'string' || Number.isNaN(Date.parse(parsed['deadline'])))) {
    problems.push('deadline must be an RFC 3339 timestamp');
  }
  const callback = parsed['callback'];
  if (callback !== undefined && !(isObject(callback) && typeof callback['url'] === 'string' && Array.isArray(callback['events']))) {
    problems.push('callback must be an object with a url and events');
  }
  if (parsed['pipeline'] !== undefined) problems.push(...routeProblems(parsed['pipeline'], parsed['model']));
  if (problems.length > 0) return { ok: false, reason: problems.join('; '), ...(id === undefined ? {} : { id }) };
  return { ok: true, value: { metadata: {}, ...parsed } as unknown as RequestEnvelope };
}

/** A pipeline route must say where the request is, consistently with the topic's model. */
function routeProblems(route: unknown, model: unknown): string[] {
  if (!isObject(route)) return ['pipeline must be an object'];
  const { name, steps, step, queued_at: queuedAt, done } = route;
  const problems: string[] = [];
  if (typeof name !== 'string') problems.push('pipeline.name must be a string');
  if (!Array.isArray(steps) || steps.length === 0 || !steps.every((s) => typeof s === 'string')) {
    problems.push('pipeline.steps must be a non-empty list of model names');
  } else if (!(Number.isInteger(step) && (step as number) >= 0 && (step as number) < steps.length)) {
    problems.push('pipeline.step must be the index of one of its steps');
  } else if (steps[step as number] !== model) {
    problems.push(`pipeline.steps[${String(step)}] is ${String(steps[step as number])}, not the model ${String(model)}`);
  }
  if (typeof queuedAt !== 'string' || Number.isNaN(Date.parse(queuedAt))) problems.push('pipeline.queued_at must be an RFC 3339 timestamp');
  if (!Array.isArray(done) || !done.every(isObject)) problems.push('pipeline.done must be a list of steps');
  return problems;
}
