import type { PredictionRecord } from '../../src/protocol/prediction.js';

export interface SseEvent {
  readonly event: string;
  readonly id: string;
  readonly data: PredictionRecord;
}

/**
 * Reads a whole event stream (until the server ends it) and parses its events; `onEvent` sees
 * each one as it arrives, so a test can act in the middle of a stream, or abort `signal` to stop
 * reading and keep what came.
 */
export async function readEvents(
  url: string,
  onEvent: (event: SseEvent) => void = () => undefined,
  signal: AbortSignal = AbortSignal.timeout(30_000),
): Promise<{ status: number; type: string; events: SseEvent[]; comments: number }> {
  const res = await fetch(url, { signal });
  const events: SseEvent[] = [];
  let comments = 0;
  let pending = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body ?? []) {
      pending += decoder.decode(chunk as Uint8Array, { stream: true });
      for (let end = pending.indexOf('\n\n'); end >= 0; end = pending.indexOf('\n\n')) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        const fields = new Map<string, string>();
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) comments += 1;
          const at = line.indexOf(': ');
          if (!line.startsWith(':') && at > 0) fields.set(line.slice(0, at), line.slice(at + 2));
        }
        if (fields.has('data')) {
          const event = { event: fields.get('event') ?? '', id: fields.get('id') ?? '', data: JSON.parse(fields.get('data')!) as PredictionRecord };
          events.push(event);
          onEvent(event);
        }
      }
    }
  } catch (error) {
    // The caller ending the stream early (its signal) keeps what was read.
    if (!signal.aborted) throw error;
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', events, comments };
}
