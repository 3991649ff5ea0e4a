import type { PredictionRecord } from '../../src/protocol/prediction.js';

export interface Answer<T = unknown> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

export async function request<T = unknown>(
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; raw?: string } = {},
): Promise<Answer<T>> {
  const hasBody = init.body !== undefined || init.raw !== undefined;
  const res = await fetch(url, {
    method: init.method ?? (hasBody ? 'POST' : 'GET'),
    headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...init.headers },
    ...(hasBody ? { body: init.raw ?? JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  return { status: res.status, headers: res.headers, body: (type.includes('json') ? JSON.parse(text) : text) as T };
}

export function predict(base: string, model: string, input: unknown, headers: Record<string, string> = {}) {
  return request<PredictionRecord>(`${base}/v1/models/${model}/predictions`, { body: { input }, headers });
}

/** Polls until the prediction is final (or the time runs out, which fails the caller's assertions). */
export async function waitForFinal(base: string, id: string, timeoutMs = 30_000, headers: Record<string, string> = {}): Promise<PredictionRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await request<PredictionRecord>(`${base}/v1/predictions/${id}`, { headers });
    if (res.status === 200 && res.body.status !== 'queued' && res.body.status !== 'running') return res.body;
    if (Date.now() > deadline) throw new Error(`prediction ${id} not final after ${timeoutMs} ms: ${JSON.stringify(res.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
