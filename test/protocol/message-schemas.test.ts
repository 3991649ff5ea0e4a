import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Static } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import type { CallbackDeadLetter } from '../../src/callbacks/dispatcher.js';
import type { DeadLetter } from '../../src/dlq/dead-letters.js';
import { cancelMessage, type CancelNotice } from '../../src/protocol/control.js';
import { requestEnvelope, requestMessage, responseMessage, type RequestEnvelope, type ResponseEnvelope, type WorkerHeartbeat } from '../../src/protocol/envelope.js';
import type {
  cancelNoticeSchema,
  deadLetterSchema,
  requestMessageSchema,
  responseMessageSchema,
  workerHeartbeatSchema} from '../../src/protocol/message-schemas.js';
import {
  messageSchemas,
  publishedSchema,
  schemaBaseUrl,
  schemaFileText
} from '../../src/protocol/message-schemas.js';
import { finishedRecord, runningRecord } from '../../src/protocol/prediction-records.js';
import { expectValidMessage, isValidMessage } from '../helpers/message-validators.js';
import { repoRoot } from '../helpers/paths.js';

/**
 * Compile-time checks that the TypeScript interfaces the code builds messages with say the
 * same as the schemas (readonly-ness aside): a field added to one and not the other fails
 * `npm run typecheck` here.
 */
type DeepMutable<T> = T extends readonly (infer U)[] ? DeepMutable<U>[] : T extends object ? { -readonly [K in keyof T]: DeepMutable<T[K]> } : T;
type Equal<A, B> = (<T>() => T extends DeepMutable<A> ? 1 : 2) extends <T>() => T extends DeepMutable<B> ? 1 : 2 ? true : false;
type Assignable<A, B> = [DeepMutable<A>] extends [DeepMutable<B>] ? true : false;

const typesAgree: {
  request: Equal<RequestEnvelope, Static<typeof requestMessageSchema>>;
  response: Assignable<ResponseEnvelope, Static<typeof responseMessageSchema>>;
  responseBack: Assignable<Static<typeof responseMessageSchema>, ResponseEnvelope>;
  cancel: Equal<CancelNotice, Static<typeof cancelNoticeSchema>>;
  heartbeat: Equal<WorkerHeartbeat, Static<typeof workerHeartbeatSchema>>;
  // The letter reader (dlq list) reads what the schema allows; the dispatcher writes what it allows.
  requestLetter: Assignable<Extract<Static<typeof deadLetterSchema>, { topic: string }>, DeadLetter>;
  callbackLetter: Equal<CallbackDeadLetter, Extract<Static<typeof deadLetterSchema>, { kind: 'callback' }>>;
} = { request: true, response: true, responseBack: true, cancel: true, heartbeat: true, requestLetter: true, callbackLetter: true };

const schemaDir = join(repoRoot, 'docs', 'schemas', 'v1');

describe('message schemas', () => {
  it('the interfaces agree with the schemas (checked by the compiler)', () => {
    expect(Object.values(typesAgree).every(Boolean)).toBe(true);
  });

  it('docs/schemas/v1 holds exactly the schemas of the code, as npm run schemas writes them', () => {
    const files = readdirSync(schemaDir).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(messageSchemas.map((s) => `${s.name}.json`).sort());
    for (const { name } of messageSchemas) {
      // On a difference: `npm run schemas` writes the files again from the code.
      expect(readFileSync(join(schemaDir, `${name}.json`), 'utf8'), `docs/schemas/v1/${name}.json is stale: run npm run schemas`).toBe(schemaFileText(name));
    }
  });

  it('each schema is 2020-12, with a versioned $id of its own and no nested ids', () => {
    for (const { name } of messageSchemas) {
      const schema = publishedSchema(name);
      expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
      expect(schema.$id).toBe(`${schemaBaseUrl}${name}.json`);
      expect(schema.$id).toMatch(/\/v1\//);
      expect(JSON.stringify(schema).match(/"\$id"/g)).toHaveLength(1);
    }
  });

  it("accepts what the builders produce and refuses what is not a message", () => {
    const pipeline = {
      name: 'wordcount',
      steps: ['words', 'count'],
      step: 1,
      queued_at: '2026-12-01T10:00:01.000Z',
      done: [{ model: 'words', status: 'succeeded' as const, attempts: 1, worker: 'w1', started_at: '2026-12-01T10:00:00.500Z', completed_at: '2026-12-01T10:00:01.000Z', queue_ms: 500, inference_ms: 1 }],
    };
    const envelope = requestEnvelope({
      id: 'p1',
      model: 'count',
      input: { words: ['a'] },
      metadata: { user: 'u' },
      created_at: '2026-12-01T10:00:00.000Z',
      reply_to: 'g1',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      deadline: '2026-12-01T10:05:00.000Z',
      replay: 1,
      callback: { url: 'https://example.test/hook', events: ['completed'] },
      pipeline,
    });
    expectValidMessage('request', JSON.parse(requestMessage(envelope).value));
    const running = runningRecord(envelope, { worker: 'w1', attempts: 1 }, Date.parse('2026-12-01T10:00:02.000Z'));
    expectValidMessage('response', JSON.parse(responseMessage(running).value));
    const failed = finishedRecord(running, { status: 'failed', error: { code: 'SPILLWAY_MODEL_FAILED', message: 'boom', retryable: true } }, Date.parse('2026-12-01T10:00:03.000Z'));
    expectValidMessage('response', JSON.parse(responseMessage(failed).value));
    expectValidMessage('cancel-notice', JSON.parse(cancelMessage({ id: 'p1', model: 'count', canceled_at: '2026-12-01T10:00:00.500Z' }).value));

    expect(isValidMessage('request', { ...envelope, v: 2 })).toBe(false);
    expect(isValidMessage('request', { ...envelope, pipeline: { ...pipeline, step: -1 } })).toBe(false);
    expect(isValidMessage('response', { ...running, v: 1, status: 'lost' })).toBe(false);
    expect(isValidMessage('response', running)).toBe(false);
    expect(isValidMessage('dead-letter', { v: 1, kind: 'callback', webhook_id: 'w' })).toBe(false);
    expect(isValidMessage('worker-heartbeat', { v: 1, worker: 'w' })).toBe(false);
  });
});
