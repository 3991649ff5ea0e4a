import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamKey } from '../../src/brokers/redis/redis-keys.js';
import type { MessageSchemaName } from '../../src/protocol/message-schemas.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { topicsFor } from '../../src/protocol/topics.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request, waitForFinal } from '../helpers/http.js';
import { expectValidMessage } from '../helpers/message-validators.js';
import { modelRepo } from '../helpers/model-repo.js';
import { samples, testBrokers } from '../helpers/paths.js';
import { until } from '../helpers/until.js';

/**
 * The messages Spillway really puts on its topics, produced by a gateway and a worker on every
 * test broker (a success, a failure that is dead-lettered, a cancel, a pipeline, heartbeats),
 * validate against the published schemas in docs/schemas/v1. On Kafka and Redis, a reader that
 * is not Spillway's code (kcat, redis-cli) reads the response topic and its messages validate too.
 */

const run = promisify(execFile);

/** Whether `tool` runs here; a leg whose tool is missing skips, saying so (scripts/install --for-tests installs both). */
async function hasTool(tool: string, versionFlag: string): Promise<boolean> {
  try {
    await run(tool, [versionFlag], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}
const hasKcat = await hasTool('kcat', '-V');
const hasRedisCli = await hasTool('redis-cli', '-v');
const missing = (tool: string, present: boolean) => (present ? '' : ` (skipped: ${tool} is not installed; scripts/install --for-tests installs it)`);

function repository(): string {
  const dir = modelRepo({ fixtures: ['flaky', 'words', 'count'], sleep: { per_batch_ms: 10, concurrency: 1 } });
  mkdirSync(join(dir, 'wordcount'));
  writeFileSync(join(dir, 'wordcount', 'pipeline.yaml'), 'description: test pipeline\nsteps:\n  - model: words\n  - model: count\n');
  return dir;
}

type Subscription = Awaited<ReturnType<Deployment['broker']['subscribe']>>;

/**
 * Reads what `sub` holds now: until a take comes back empty, or for at most 5 s (heartbeats
 * keep coming). Subscribed before the messages were produced, so no broker has dropped them yet.
 */
async function drain(sub: Subscription, into: unknown[]): Promise<void> {
  const deadline = Date.now() + 5000;
  for (let batch = await sub.take(1000, { timeoutMs: 300 }); batch.length > 0 && Date.now() < deadline; batch = await sub.take(1000, { timeoutMs: 300 })) {
    for (const delivery of batch) {
      into.push(JSON.parse(delivery.value));
      await delivery.ack();
    }
  }
}

const models = ['iris', 'flaky', 'words', 'count', 'sleep'];

const idOf = (m: unknown) => (m as { id?: string }).id;

describe.each(testBrokers)('topic messages match their schemas on the $name broker', ({ name, url }) => {
  let d: Deployment;
  /** The ids of what the tests ran: a success, a dead-lettered failure, a cancel, a pipeline. */
  const ids: Record<'success' | 'failure' | 'cancel' | 'pipeline', string> = { success: '', failure: '', cancel: '', pipeline: '' };

  /** What Spillway's own client read on each topic, by topic. */
  const seen = new Map<string, unknown[]>();

  beforeAll(async () => {
    d = await startDeployment({ models: repository(), broker: url });
    const t = topicsFor(d.prefix);
    const topics = [...models.map((m) => t.requests(m)), t.responses, t.dlq, t.control, t.workers];
    const subs = new Map<string, Subscription>();
    for (const topic of topics) {
      subs.set(topic, await d.broker.subscribe({ topic, group: `probe-${randomUUID()}`, from: 'earliest', ephemeral: true }));
      seen.set(topic, []);
    }
    const iris = await predict(d.url, 'iris', samples('iris')[0]!.input, { prefer: 'wait=20' });
    expect(iris.body.status).toBe('succeeded');
    ids.success = iris.body.id;
    // Fails on every attempt: dead-lettered after max_attempts (3).
    const flaky = await predict(d.url, 'flaky', { key: randomUUID(), fail_times: 10, retryable: true });
    ids.failure = flaky.body.id;
    const pipeline = await predict(d.url, 'wordcount', { text: 'the quick brown fox' }, { prefer: 'wait=20' });
    expect(pipeline.body).toMatchObject({ status: 'succeeded', step: 'count' });
    ids.pipeline = pipeline.body.id;
    const sleeper = await predict(d.url, 'sleep', { sleep_ms: 60_000 });
    ids.cancel = sleeper.body.id;
    const canceled = await request<PredictionRecord>(`${d.url}/v1/predictions/${ids.cancel}/cancel`, { method: 'POST' });
    expect(canceled.body.status).toBe('canceled');
    expect((await waitForFinal(d.url, ids.failure)).status).toBe('failed');
    for (const [topic, sub] of subs) await drain(sub, seen.get(topic)!);
    // Workers publish a heartbeat a few times a second in tests.
    await until('a heartbeat', async () => {
      await drain(subs.get(t.workers)!, seen.get(t.workers)!);
      return seen.get(t.workers)!.length > 0 ? true : undefined;
    });
    for (const sub of subs.values()) await sub.close();
  }, 120_000);
  afterAll(async () => d?.close());

  const check = (schema: MessageSchemaName, topic: string): unknown[] => {
    const messages = seen.get(topic) ?? [];
    expect(messages.length, topic).toBeGreaterThan(0);
    for (const m of messages) expectValidMessage(schema, m);
    return messages;
  };

  it('requests, on each model topic, including a pipeline step carrying its route', () => {
    const t = topicsFor(d.prefix);
    for (const model of models) check('request', t.requests(model));
    const steps = check('request', t.requests('count'));
    expect(steps).toContainEqual(expect.objectContaining({ id: ids.pipeline, pipeline: expect.objectContaining({ name: 'wordcount', step: 1 }) }));
  });

  it('responses: queued to succeeded, failed, canceled, and a pipeline record with its steps', () => {
    const records = (check('response', topicsFor(d.prefix).responses)) as PredictionRecord[];
    const statuses = (id: string) => records.filter((r) => r.id === id).map((r) => r.status);
    expect(statuses(ids.success)).toContain('succeeded');
    expect(statuses(ids.failure)).toContain('failed');
    expect(statuses(ids.cancel)).toContain('canceled');
    expect(records.find((r) => r.id === ids.pipeline && r.status === 'succeeded')?.steps).toHaveLength(2);
  });

  it('a dead letter for the failure, a cancel notice, and heartbeats', () => {
    const t = topicsFor(d.prefix);
    const letters = (check('dead-letter', t.dlq)) as { value: string }[];
    expect(letters.map((l) => idOf(JSON.parse(l.value)))).toContain(ids.failure);
    expect(check('cancel-notice', t.control).map(idOf)).toContain(ids.cancel);
    check('worker-heartbeat', t.workers);
  });

  /** The response topic as a third-party reader saw it: each message parsed and validated. */
  const expectThirdPartyResponses = (values: readonly string[]) => {
    expect(values.length).toBeGreaterThan(0);
    const records = values.map((v) => JSON.parse(v) as PredictionRecord);
    for (const r of records) expectValidMessage('response', r);
    for (const id of Object.values(ids)) expect(records.map((r) => r.id)).toContain(id);
  };

  describe.runIf(name === 'kafka')('read by kcat', () => {
    it.skipIf(!hasKcat)(`kcat reads the responses topic, and each message matches the schema${missing('kcat', hasKcat)}`, async () => {
      const brokers = url.replace(/^kafka:\/\//, '');
      // -J: one JSON envelope per message, so a payload is read whole whatever it holds; -e: stop at the end.
      const { stdout } = await run('kcat', ['-C', '-q', '-J', '-b', brokers, '-t', topicsFor(d.prefix).responses, '-o', 'beginning', '-e'], {
        timeout: 60_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      const lines = stdout.split('\n').filter((line) => line.trim() !== '');
      expectThirdPartyResponses(lines.map((line) => (JSON.parse(line) as { payload: string }).payload));
    });
  });

  describe.runIf(name === 'redis')('read by redis-cli', () => {
    it.skipIf(!hasRedisCli)(`redis-cli XREAD reads the responses stream, and each value matches the schema${missing('redis-cli', hasRedisCli)}`, async () => {
      // RESP2 as JSON: [[key, [[entry id, [field, value, …]], …]]]; the fields are value, key and headers.
      const { stdout } = await run('redis-cli', ['-u', url, '-2', '--json', 'XREAD', 'COUNT', '100000', 'STREAMS', streamKey(topicsFor(d.prefix).responses), '0'], {
        timeout: 60_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      const streams = JSON.parse(stdout) as [string, [string, string[]][]][];
      const values = streams.flatMap(([, entries]) => entries.map(([, fields]) => fields[fields.indexOf('value') + 1]!));
      expectThirdPartyResponses(values);
    });
  });
});
