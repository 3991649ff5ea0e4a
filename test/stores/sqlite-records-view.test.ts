import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../src/brokers/embedded/embedded-broker.js';
import { responseMessage } from '../../src/protocol/envelope.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js';
import type { StoredNotice } from '../../src/stores/store.js';
import { record } from './conformance.js';
import { countingStoreWriter, storedMarks } from './records-view-checks.js';

const responses = 'responses';
const succeeded = (id: string): PredictionRecord =>
  record(id, { status: 'succeeded', attempts: 1, output: { echo: id }, completed_at: '2026-01-01T00:00:01.000Z' });

/** A store in the queue's file, the broker that writes into it, and what the store announced. */
function openPair() {
  const dataDir = mkdtempSync(join(tmpdir(), 'spillway-view-'));
  const store = SqliteStore.open({ dataDir, file: 'queue.db', retentionMs: 60_000 });
  const broker = EmbeddedBroker.open({ dataDir, views: [store.recordsView!(responses)] });
  const notices: StoredNotice[] = [];
  store.onStored((notice) => notices.push(notice));
  opened.push(async () => {
    await broker.close();
    await store.close();
  });
  return { dataDir, store, broker, notices, announced: () => notices.flatMap((n) => n.records.map((r) => `${r.id}:${r.status}`)) };
}

const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of opened.splice(0)) await close();
});

describe('sqlite store in the embedded queue file', () => {
  it('is written in the transaction that hands a result off: stored and acked together, announced once committed', async () => {
    const { store, broker, announced } = openPair();
    await broker.publish('requests', [{ value: 'p1' }]);
    const sub = await broker.subscribe({ topic: 'requests', group: 'workers' });
    const [request] = await sub.take(1);
    const commits = broker.publishCommits;

    await broker.publishAndAck(responses, [responseMessage(succeeded('p1'))], [request!]);

    expect(broker.publishCommits - commits).toBe(1);
    // No store writer runs here: the record went in with the result.
    expect(await store.get('p1')).toEqual(succeeded('p1'));
    expect(await broker.backlog('requests', 'workers')).toBe(0);
    await expect.poll(announced).toEqual(['p1:succeeded']);
    await sub.close();
  });

  it('keeps the store rule: a later final record of the same prediction changes nothing and is not announced', async () => {
    const { store, broker, announced } = openPair();
    const canceled = record('p1', { status: 'canceled', completed_at: '2026-01-01T00:00:00.500Z' });
    await broker.publish(responses, [responseMessage(record('p1', { status: 'running', attempts: 1 })), responseMessage(canceled)]);
    await broker.publish(responses, [responseMessage(succeeded('p1'))]);
    expect(await store.get('p1')).toEqual(canceled);
    await expect.poll(announced).toEqual(['p1:canceled']);
    // Announcements arrive in order: had the second publish announced, it would be here by now.
    await broker.publish(responses, [responseMessage(succeeded('p2'))]);
    await expect.poll(announced).toEqual(['p1:canceled', 'p2:succeeded']);
  });

  it('stores and announces nothing when the publish is refused, and the request stays leased', async () => {
    const { dataDir, store, broker, announced } = openPair();
    await broker.publish('requests', [{ value: 'p1' }]);
    const sub = await broker.subscribe({ topic: 'requests', group: 'workers' });
    const [request] = await sub.take(1);
    const other = new Database(join(dataDir, 'queue.db'));
    other.exec(`CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.topic = '${responses}' BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    await expect(broker.publishAndAck(responses, [responseMessage(succeeded('p1'))], [request!])).rejects.toThrow(/refused/);
    other.exec('DROP TRIGGER refuse');
    other.close();
    expect(await store.get('p1')).toBeUndefined();
    expect(await broker.backlog('requests', 'workers')).toBe(1);
    // Something announced later arrives; nothing from the refused hand-off came before it.
    await broker.publish(responses, [responseMessage(succeeded('p2'))]);
    await expect.poll(announced).toEqual(['p2:succeeded']);
    await sub.close();
  });

  it('marks what it stored, so the store writer passes it over and still stores what a queue without the view published', async () => {
    const { dataDir, store, broker } = openPair();
    // A worker process that opened the queue without the store (`spillway worker`) publishes unmarked.
    const plain = EmbeddedBroker.open({ dataDir });
    opened.push(() => plain.close());
    await broker.publish(responses, [responseMessage(succeeded('viewed'))]);
    await plain.publish(responses, [responseMessage(succeeded('plain'))]);

    const reader = await broker.subscribe({ topic: responses, group: 'look', from: 'earliest', soleReader: true });
    const seen = await reader.take(2, { timeoutMs: 5000 });
    expect(storedMarks(seen)).toEqual([
      ['viewed', 'yes'],
      ['plain', undefined],
    ]);
    await reader.close();

    const writer = await countingStoreWriter(broker, store, responses);
    await expect.poll(() => store.get('plain')).toEqual(succeeded('plain'));
    expect(writer.put).toEqual(['plain']);
    await writer.stop();
  });
});
