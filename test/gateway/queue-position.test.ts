import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { topicsFor, workerGroup } from '../../src/protocol/topics.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { testBrokers } from '../helpers/paths.js';
import { readEvents } from '../helpers/sse.js';
import { until } from '../helpers/until.js';

/**
 * A queued prediction shows its place in line (issue 15). No worker runs: the test takes the
 * requests itself, one at a time, so the queue moves exactly when the test says. On the brokers
 * that count exactly; Kafka's estimate (it cannot see taken records, nor order across partitions)
 * is checked by the broker conformance suite.
 */
describe.each(testBrokers)('queue position on a queued prediction, $name broker', ({ name, url }) => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ models: modelRepo({ sleep: { per_batch_ms: 10 } }), withWorker: false, broker: url });
  });
  afterAll(async () => {
    await d.close();
  });

  const read = async (id: string) => (await request<PredictionRecord>(`${d.url}/v1/predictions/${id}`)).body;
  const positions = async (ids: readonly string[]) => Promise.all(ids.map(async (id) => (await read(id)).queue?.position ?? null));
  /** Polls until every position is as expected (readings are cached for a second). */
  const expectPositions = (ids: readonly string[], expected: readonly (number | null)[]) =>
    until(`positions ${expected.join()}`, async () => ((await positions(ids)).join() === expected.join() ? true : undefined));

  it.skipIf(name === 'kafka')('counts the requests ahead, falls as they are taken, and an event stream sends each move', async () => {
    const ids: string[] = [];
    // One after another, so the order of publishing is the order of ids.
    for (let i = 0; i < 4; i++) ids.push((await predict(d.url, 'sleep', { n: i })).body.id);
    expect(await positions(ids)).toEqual([0, 1, 2, 3]);
    const last = await read(ids[3]!);
    expect(last.queue).toMatchObject({ position: 3, ahead_exact: true });
    expect(Date.parse(last.queue!.measured_at)).not.toBeNaN();
    // Nothing has drained, so there is nothing to estimate a start from.
    expect(last.queue!.eta).toBeUndefined();

    const stop = new AbortController();
    const moves: number[] = [];
    const streamed = readEvents(
      `${d.url}/v1/predictions/${ids[3]}/events`,
      (e) => {
        if (e.data.queue !== undefined) moves.push(e.data.queue.position);
        if (e.data.queue?.position === 0) stop.abort();
      },
      stop.signal,
    );
    await until('the first event', () => (moves.length > 0 ? true : undefined));

    const sub = await d.broker.subscribe({ topic: topicsFor(d.prefix).requests('sleep'), group: workerGroup });
    for (let taken = 1; taken <= 3; taken++) {
      const [delivery] = await sub.take(1);
      expect(delivery!.value).toContain(ids[taken - 1]);
      // A taken request has no place; the rest move up by one.
      await expectPositions(ids, [...ids.slice(0, taken).map(() => null), ...ids.slice(taken).map((_id, i) => i)]);
      await until(`the stream's move to ${3 - taken}`, () => (moves.at(-1) === 3 - taken ? true : undefined));
    }
    const { events } = await streamed;
    expect(moves).toEqual([3, 2, 1, 0]);
    expect(events.map((e) => e.event)).toEqual(['queued', 'position', 'position', 'position']);
    for (const e of events) expect(e.data.status).toBe('queued');
    await sub.close();
  });

  it.skipIf(name === 'kafka')('another gateway of the deployment shows the place of a request this one accepted, and no client sees where the broker keeps it', async () => {
    const other = await startDeployment({ models: modelRepo({ sleep: { per_batch_ms: 10 } }), withWorker: false, broker: url, dataDir: d.dataDir, prefix: d.prefix });
    try {
      const ids: string[] = [];
      const submit = () => request<Record<string, unknown>>(`${d.url}/v1/models/sleep/predictions`, { body: { input: { n: 1 } }, headers: { 'idempotency-key': `k-${name}` } });
      ids.push((await predict(d.url, 'sleep', { n: 0 })).body.id);
      const accepted = await submit();
      expect(accepted.status).toBe(202);
      expect(accepted.body).not.toHaveProperty('queue_slot');
      ids.push(String(accepted.body['id']));
      // A replay answers the stored record: without the slot, like every other answer.
      const replayed = await submit();
      expect(replayed.body['id']).toBe(ids[1]);
      expect(replayed.body).not.toHaveProperty('queue_slot');
      const readOther = async (id: string) => request<Record<string, unknown>>(`${other.url}/v1/predictions/${id}`);
      const placesOnOther = async () => (await Promise.all(ids.map(readOther))).map((r) => (r.body['queue'] as { position: number } | undefined)?.position);
      // Whatever the test before left queued stays ahead of them.
      const [first, second] = await placesOnOther();
      expect(first).toBeGreaterThanOrEqual(0);
      expect(second).toBe(first! + 1);
      for (const r of await Promise.all(ids.map(readOther))) expect(r.body).not.toHaveProperty('queue_slot');
      const stop = new AbortController();
      const { events } = await readEvents(`${other.url}/v1/predictions/${ids[1]}/events`, () => stop.abort(), stop.signal);
      expect(events[0]!.data.queue?.position).toBe(second);
      expect(events[0]!.data).not.toHaveProperty('queue_slot');
      // One taken from the head of the line (the first, if nothing was ahead): the rest move up, on the other gateway too.
      const sub = await d.broker.subscribe({ topic: topicsFor(d.prefix).requests('sleep'), group: workerGroup });
      await expect(sub.take(1)).resolves.toHaveLength(1);
      await until('both moved up', async () => ((await placesOnOther()).join() === [first === 0 ? undefined : first! - 1, second! - 1].join() ? true : undefined));
      await sub.close();
    } finally {
      await other.close();
    }
  });
});
