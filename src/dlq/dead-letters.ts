import { randomUUID } from 'node:crypto';
import type { Broker } from '../brokers/broker.js';
import { decodeRequest } from '../protocol/decode.js';
import { envelopeVersion, headerNames, type Topics } from '../protocol/envelope.js';
import type { ErrorBody } from '../protocol/errors.js';

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

export interface ListedLetter {
  readonly letter: DeadLetter;
  /** The prediction it belongs to, when the failed message was a readable request. */
  readonly id?: string;
  readonly model?: string;
  /** Already sent back by `replay`. */
  readonly replayed: boolean;
  /** Why it cannot be replayed (not a request), if so. */
  readonly unreplayable?: string;
}

/** Where replays are recorded, so a letter goes back once and `list` can tell. */
export const replayLogTopic = (topics: Topics) => `${topics.dlq}.replayed`;
const letterKey = (l: Pick<DeadLetter, 'topic' | 'position'>) => `${l.topic}@${l.position}`;

/**
 * Every message of a topic, read from its start by a group of our own that is removed after:
 * listing consumes nothing, and works the same on every broker.
 */
async function readAll(broker: Broker, topic: string): Promise<string[]> {
  const sub = await broker.subscribe({ topic, group: `dlq-tool.${randomUUID()}`, from: 'earliest', ephemeral: true });
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

/** The dead letters, oldest first, each with whether it was replayed and whether it can be. */
export async function listDeadLetters(broker: Broker, topics: Topics): Promise<ListedLetter[]> {
  await broker.ensureTopic(topics.dlq);
  await broker.ensureTopic(replayLogTopic(topics));
  const replayed = new Set<string>();
  for (const value of await readAll(broker, replayLogTopic(topics))) {
    const parsed = safeParse(value) as { letter?: { topic?: unknown; position?: unknown } } | undefined;
    if (typeof parsed?.letter?.topic === 'string' && typeof parsed.letter.position === 'string') {
      replayed.add(letterKey({ topic: parsed.letter.topic, position: parsed.letter.position }));
    }
  }
  const listed: ListedLetter[] = [];
  for (const value of await readAll(broker, topics.dlq)) {
    const letter = safeParse(value) as DeadLetter | undefined;
    if (letter === undefined || typeof letter.value !== 'string' || typeof letter.topic !== 'string') continue;
    const decoded = decodeRequest(letter.value);
    listed.push({
      letter,
      ...(decoded.ok ? { id: decoded.value.id, model: decoded.value.model } : decoded.id === undefined ? {} : { id: decoded.id }),
      replayed: replayed.has(letterKey(letter)),
      ...(decoded.ok ? {} : { unreplayable: `not a request: ${decoded.reason}` }),
    });
  }
  return listed;
}

/**
 * Sends chosen dead letters back to the request topic they came from, as a new replay
 * generation of the same prediction id: its records then supersede the failed one in the store,
 * so a poll shows the new outcome. Letters already replayed, or not requests, are skipped.
 */
export async function replayDeadLetters(
  broker: Broker,
  topics: Topics,
  choose: (l: ListedLetter) => boolean,
): Promise<{ replayed: ListedLetter[]; skipped: ListedLetter[] }> {
  const replayed: ListedLetter[] = [];
  const skipped: ListedLetter[] = [];
  for (const l of await listDeadLetters(broker, topics)) {
    if (!choose(l)) continue;
    const decoded = decodeRequest(l.letter.value);
    if (l.replayed || !decoded.ok) {
      skipped.push(l);
      continue;
    }
    const request = { ...decoded.value, replay: (decoded.value.replay ?? 0) + 1 };
    await broker.publish(l.letter.topic, [
      {
        key: request.id,
        headers: { [headerNames.id]: request.id, [headerNames.model]: request.model, ...(request.traceparent ? { traceparent: request.traceparent } : {}) },
        value: JSON.stringify(request),
      },
    ]);
    await broker.publish(replayLogTopic(topics), [
      {
        key: letterKey(l.letter),
        value: JSON.stringify({ v: envelopeVersion, letter: { topic: l.letter.topic, position: l.letter.position }, id: request.id, replay: request.replay, replayed_at: new Date().toISOString() }),
      },
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
