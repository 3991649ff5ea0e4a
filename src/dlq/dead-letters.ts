import type { Broker } from '../brokers/broker.js';
import { decodeRequest } from '../protocol/decode.js';
import { envelopeVersion, requestMessage } from '../protocol/envelope.js';
import type { ErrorBody } from '../protocol/errors.js';
import { dlqToolGroup, type Topics } from '../protocol/topics.js';

/** A message on `<prefix>.dlq` (docs/messages.md). */
export interface DeadLetter {
  readonly v: number;
  /** The topic the failed message came from, and where it was on it. */
  readonly topic: string;
  readonly position: string;
  readonly attempts: number;
  readonly reason: ErrorBody;
  readonly failed_at: string;
  /** The failed message, as it was. */
  readonly value: string;
}

/** A dead letter as `list` shows it: a request that failed, or a webhook that was never delivered. */
export interface ListedLetter {
  readonly kind: 'request' | 'callback';
  /** Which letter this is: a request's topic@position, a webhook's id@failed_at. */
  readonly key: string;
  /** The prediction it belongs to, when known. */
  readonly id?: string;
  readonly model?: string;
  readonly attempts: number;
  readonly reason: { readonly code: string; readonly message: string };
  readonly failed_at: string;
  /** Already sent back by `replay`. */
  readonly replayed: boolean;
  /** Why it cannot be replayed (a request letter that is not a request), if so. */
  readonly unreplayable?: string;
  /** The request letter as it is on the topic. */
  readonly request?: DeadLetter;
  /** The webhook of a callback letter. */
  readonly webhook?: { readonly webhook_id: string; readonly url: string };
}

/** Where replays are recorded, so a letter goes back once and `list` can tell. */
export const replayLogTopic = (topics: Topics) => `${topics.dlq}.replayed`;

/**
 * Every message of a topic, read from its start by a group of our own that is removed after:
 * listing consumes nothing, and works the same on every broker.
 */
async function readAll(broker: Broker, topic: string): Promise<string[]> {
  const sub = await broker.subscribe({ topic, group: dlqToolGroup(), from: 'earliest', ephemeral: true });
  const values: string[] = [];
  try {
    for (let batch = await sub.take(1000, { timeoutMs: 1000 }); batch.length > 0; batch = await sub.take(1000, { timeoutMs: 300 })) {
      for (const d of batch) values.push(d.value);
      await Promise.all(batch.map((d) => d.ack()));
    }
  } finally {
    await sub.close();
  }
  return values;
}

function toListed(value: string, replayed: ReadonlySet<string>): ListedLetter | undefined {
  const parsed = safeParse(value) as Record<string, unknown> | undefined;
  if (parsed === undefined || typeof parsed !== 'object') return undefined;
  const reason = (parsed['reason'] ?? { code: 'UNKNOWN', message: '' }) as ListedLetter['reason'];
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  const common = { attempts: Number(parsed['attempts'] ?? 0), reason, failed_at: text(parsed['failed_at']) };
  if (parsed['kind'] === 'callback' && typeof parsed['webhook_id'] === 'string') {
    const key = `${parsed['webhook_id']}@${common.failed_at}`;
    return {
      kind: 'callback',
      key,
      id: text(parsed['prediction_id']),
      ...common,
      replayed: replayed.has(key),
      webhook: { webhook_id: parsed['webhook_id'], url: text(parsed['url']) },
    };
  }
  const letter = parsed as unknown as DeadLetter;
  if (typeof letter.value !== 'string' || typeof letter.topic !== 'string') return undefined;
  const key = `${letter.topic}@${letter.position}`;
  const decoded = decodeRequest(letter.value);
  return {
    kind: 'request',
    key,
    ...(decoded.ok ? { id: decoded.value.id, model: decoded.value.model } : decoded.id === undefined ? {} : { id: decoded.id }),
    ...common,
    replayed: replayed.has(key),
    ...(decoded.ok ? {} : { unreplayable: `not a request: ${decoded.reason}` }),
    request: letter,
  };
}

/** The dead letters, oldest first, each with whether it was replayed and whether it can be. */
export async function listDeadLetters(broker: Broker, topics: Topics): Promise<ListedLetter[]> {
  await broker.ensureTopic(topics.dlq);
  await broker.ensureTopic(replayLogTopic(topics));
  const replayed = new Set<string>();
  for (const value of await readAll(broker, replayLogTopic(topics))) {
    const parsed = safeParse(value) as { key?: unknown } | undefined;
    if (typeof parsed?.key === 'string') replayed.add(parsed.key);
  }
  const listed: ListedLetter[] = [];
  for (const value of await readAll(broker, topics.dlq)) {
    const l = toListed(value, replayed);
    if (l !== undefined) listed.push(l);
  }
  return listed;
}

/**
 * Sends chosen dead letters back. A request goes back to the topic it came from as a new replay
 * generation of the same prediction id: its records then supersede the failed one in the store,
 * so a poll shows the new outcome. A webhook is scheduled again with the same webhook id and a
 * fresh budget of attempts (`resendCallback`). Letters already replayed, or not requests, are
 * skipped.
 */
export async function replayDeadLetters(
  broker: Broker,
  topics: Topics,
  choose: (l: ListedLetter) => boolean,
  resendCallback: (webhookId: string) => Promise<boolean>,
): Promise<{ replayed: ListedLetter[]; skipped: ListedLetter[] }> {
  const replayed: ListedLetter[] = [];
  const skipped: ListedLetter[] = [];
  for (const l of await listDeadLetters(broker, topics)) {
    if (!choose(l)) continue;
    if (l.replayed || l.unreplayable !== undefined) {
      skipped.push(l);
      continue;
    }
    if (l.webhook !== undefined) {
      if (!(await resendCallback(l.webhook.webhook_id))) {
        skipped.push({ ...l, unreplayable: 'the webhook is no longer dead (already resent, or past retention)' });
        continue;
      }
    } else if (l.request !== undefined) {
      const decoded = decodeRequest(l.request.value);
      if (!decoded.ok) continue;
      const route = decoded.value.pipeline;
      // A pipeline's step goes back to that step, its queue wait counted from now.
      const request = {
        ...decoded.value,
        replay: (decoded.value.replay ?? 0) + 1,
        ...(route === undefined ? {} : { pipeline: { ...route, queued_at: new Date().toISOString() } }),
      };
      await broker.publish(l.request.topic, [requestMessage(request)]);
    }
    await broker.publish(replayLogTopic(topics), [
      { key: l.key, value: JSON.stringify({ v: envelopeVersion, key: l.key, kind: l.kind, id: l.id, replayed_at: new Date().toISOString() }) },
    ]);
    replayed.push(l);
  }
  return { replayed, skipped };
}

function safeParse(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}
