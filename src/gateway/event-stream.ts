import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import { SpillwayError } from '../protocol/errors.js';
import { clientRecord, isTerminal, supersedes, type PredictionRecord } from '../protocol/prediction.js';
import type { GatewayContext } from './context.js';
import { readPrediction } from './read-prediction.js';
import type { Caller } from './tenancy/authenticator.js';

/** Proxies close connections idle for about a minute; a comment line now and then keeps them open. */
const keepAliveMs = 15_000;
/** The store is read this often too, for records this gateway's stream reader could miss (or not see yet). */
const pollMs = 1000;

/**
 * `GET /v1/predictions/{id}/events`: Server-Sent Events, one per recorded status, from the current
 * record to the final one; then the stream ends. Only what the response stream carries can be
 * sent: a run shorter than the worker's running_after_ms has no `running` record. Records come from the response stream (through
 * `ctx.listeners`) and from the store; whichever arrives first moves the stream forward, and a
 * record that does not (a repeat, an older status) is dropped. Final records are only ever
 * sent once stored, so a poll after the stream ends agrees with its last event. While the
 * prediction is queued, each store read (every second) also reads its place in line, and a
 * `position` event (the whole record, status `queued`, with its new `queue`) follows each move.
 */
export async function openEventStream(
  ctx: GatewayContext,
  caller: Caller,
  id: string,
  reply: FastifyReply,
  log: FastifyBaseLogger,
  check: (record: PredictionRecord) => Promise<PredictionRecord | undefined>,
): Promise<void> {
  if (ctx.isClosing()) throw new SpillwayError('SPILLWAY_SHUTTING_DOWN');
  // Listening starts before the first read: what goes by while it (and the place in line, which
  // may take a broker round trip) is read is kept and sent after it, so no step is missed.
  const early: PredictionRecord[] = [];
  let onRecord: (record: PredictionRecord) => void = (record) => {
    early.push(record);
  };
  const unlisten = ctx.listeners.tryListen(id, (record) => onRecord(record));
  if (unlisten === undefined) throw new SpillwayError('SPILLWAY_TOO_MANY_STREAMS');
  let first: PredictionRecord;
  try {
    first = await ctx.queuePlaces.withPlace(await readPrediction(ctx, caller, id));
  } catch (error) {
    unlisten();
    throw error;
  }

  const res = reply.raw;
  let last: PredictionRecord | undefined;
  let sequence = 0;
  let ended = false;
  const timers: NodeJS.Timeout[] = [];
  const write = (event: string, record: PredictionRecord) => {
    last = record;
    sequence += 1;
    res.write(`id: ${sequence}\nevent: ${event}\ndata: ${JSON.stringify(clientRecord(record))}\n\n`);
  };
  const send = (record: PredictionRecord) => {
    if (ended) return;
    if (last === undefined || supersedes(record, last)) {
      write(record.status, record);
      if (isTerminal(record.status)) end();
    } else if (movedInLine(record, last)) write('position', record);
  };
  function end(): void {
    if (ended) return;
    ended = true;
    unlisten?.();
    for (const timer of timers) clearInterval(timer);
    ctx.shutdown.removeEventListener('abort', end);
    res.end();
  }
  const refresh = async () => {
    try {
      const current = await ctx.store.get(id);
      if (current !== undefined) send(await ctx.queuePlaces.withPlace((await check(current)) ?? current));
    } catch (error) {
      log.warn({ err: error, id }, 'event stream: could not read the store');
    }
  };

  reply.hijack();
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    // Tells nginx-like proxies not to buffer the stream.
    'x-accel-buffering': 'no',
    // One stream per connection: it ends with the stream (an EventSource reconnects anyway).
    connection: 'close',
  });
  res.on('close', end);
  // A write racing a client that just left must not become an unhandled 'error'.
  res.on('error', end);
  ctx.shutdown.addEventListener('abort', end);
  send(first);
  for (const record of early) send(record);
  onRecord = send;
  // What went by just before listening began: on the response stream (not stored yet) or in the store.
  const recent = ctx.listeners.recent(id);
  if (recent !== undefined) send(recent);
  await refresh();
  if (ended) return;
  timers.push(
    setInterval(() => void refresh(), pollMs),
    setInterval(() => res.write(': keep-alive\n\n'), keepAliveMs),
  );
}


/** Still queued, and the broker now counts another number ahead of it. */
function movedInLine(record: PredictionRecord, last: PredictionRecord): boolean {
  return record.status === 'queued' && last.status === 'queued' && record.queue !== undefined && record.queue.position !== last.queue?.position;
}
