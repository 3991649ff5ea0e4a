import { TransportError, type HttpClient } from './http-client.js';

/** The part of GET /v1/models/{model} the bench reads. */
export interface ModelSummary {
  readonly name: string;
  readonly state?: string;
  readonly error?: string;
  readonly dispatch?: string;
  readonly concurrency?: number;
  readonly queue_depth?: number;
  readonly workers: readonly WorkerSummary[];
}

export interface WorkerSummary {
  readonly worker: string;
  readonly last_seen: string;
  readonly in_flight?: number;
  readonly draining?: boolean;
  readonly state: string;
  readonly concurrency?: number;
  readonly busy_ms?: number;
}

/** The target cannot be benchmarked: unreachable, no such model, or not answering sensibly. */
export class TargetError extends Error {
  override readonly name = 'TargetError';
  constructor(
    message: string,
    /** The HTTP status the target answered, if it answered: 401 asks for a key. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export async function describeModel(http: HttpClient, model: string, timeoutMs: number): Promise<ModelSummary> {
  const path = `v1/models/${encodeURIComponent(model)}`;
  const url = http.url(path);
  let answer;
  try {
    answer = await http.request('GET', path, { timeoutMs });
  } catch (error) {
    const why = error instanceof TransportError ? error.code : (error as Error).message;
    throw new TargetError(`cannot reach ${url} (${why})`);
  }
  if (answer.status === 404) throw new TargetError(`the target has no model named "${model}" (GET ${url} answered 404)`);
  if (answer.status !== 200) throw new TargetError(`GET ${url} answered ${answer.status}${problemOf(answer.body)}`, answer.status);
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    throw new TargetError(`GET ${url} did not answer JSON; is it a Spillway gateway?`);
  }
  const summary = body as Partial<ModelSummary> | null;
  if (summary === null || typeof summary !== 'object' || !Array.isArray(summary.workers)) {
    throw new TargetError(`GET ${url} did not answer a model summary; is it a Spillway gateway?`);
  }
  return summary as ModelSummary;
}

/** The code and detail of a problem+json answer, or the start of whatever else it said. */
function problemOf(body: string): string {
  try {
    const problem = JSON.parse(body) as { code?: unknown; detail?: unknown; title?: unknown };
    if (typeof problem.code === 'string') {
      const detail = typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : '';
      return ` ${problem.code}${detail === '' ? '' : `: ${detail}`}`;
    }
  } catch {
    // Not JSON: its first characters are the best hint.
  }
  return body.trim() === '' ? '' : `: ${body.slice(0, 200)}`;
}
