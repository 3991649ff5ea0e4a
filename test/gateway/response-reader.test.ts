import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../src/brokers/embedded/embedded-broker.js';
import type { StreamReader } from '../../src/brokers/stream-reader.js';
import { RecordListeners } from '../../src/gateway/record-listeners.js';
import { startResponseReader } from '../../src/gateway/response-reader.js';
import { Waiters } from '../../src/gateway/waiters.js';
import { responseMessage } from '../../src/protocol/envelope.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js';
import { record } from '../stores/conformance.js';
import { until } from '../helpers/until.js';

const topic = 'spillway.responses';

describe('response reader', () => {
  let dir: string;
  let broker: EmbeddedBroker;
  let store: SqliteStore;
  let reader: StreamReader | undefined;
  const puts: PredictionRecord[][] = [];
  const waiters = new Waiters(100);
  const listeners = new RecordListeners(100);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'spillway-response-reader-'));
    broker = EmbeddedBroker.open({ dataDir: dir });
    store = SqliteStore.open({ dataDir: dir, retentionMs: 60_000 });
    puts.length = 0;
  });
  afterEach(async () => {
    await reader?.stop();
    await broker.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (grace: { graceMs: number; maxGraceMs: number }) =>
    startResponseReader({
      broker,
      store: {
        get: (id) => store.get(id),
        put: (records) => {
          puts.push([...records]);
          return store.put(records);
        },
      },
      waiters,
      listeners,
      finished: () => undefined,
      responsesTopic: topic,
      gatewayId: 'gw-test',
      logger: pino({ level: 'silent' }),
      ...grace,
    });

  it('leaves a lagging store writer to wake the waiter, rather than writing the record a second time', async () => {
    reader = await start({ graceMs: 1, maxGraceMs: 60_000 });
    const done = record('p1', { status: 'succeeded', attempts: 1, output: { label: 'a' } });
    const waiter = waiters.tryAdd('p1')!;
    const answer = waiter.wait(60_000);
    await broker.publish(topic, [responseMessage(done)]);
    // The store writer is far behind: many of the reader's grace periods pass first.
    await sleep(300);
    await store.put([done]);
    waiters.resolve(done);
    expect(await answer).toEqual(done);
    await sleep(50);
    expect(puts).toEqual([]);
  });

  it('wakes the waiter from its own write when no store writer stores the record in time', async () => {
    reader = await start({ graceMs: 1, maxGraceMs: 8 });
    const done = record('p2', { status: 'succeeded', attempts: 1, output: { label: 'b' } });
    const answer = waiters.tryAdd('p2')!.wait(60_000);
    await broker.publish(topic, [responseMessage(done)]);
    expect(await answer).toEqual(done);
    await until('p2 stored', async () => ((await store.get('p2'))?.status === 'succeeded' ? true : undefined));
    expect(puts.flat().map((r) => r.id)).toEqual(['p2']);
  });
});
