import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../src/brokers/embedded/embedded-broker.js';
import { describeBrokerConformance } from './conformance.js';

const dataDir = mkdtempSync(join(tmpdir(), 'spillway-embedded-'));
const fixture = new URL('../fixtures/take-and-hang.mjs', import.meta.url).pathname;

describeBrokerConformance('embedded', () => ({
  url: 'embedded',
  dataDir,
  leaseMs: 500,
  open: async () => EmbeddedBroker.open({ dataDir }),
}));

describe('embedded broker', () => {
  it('counts a delivery to a process that died as an attempt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-crash-'));
    const broker = EmbeddedBroker.open({ dataDir: dir });
    await broker.publish('t', [{ value: 'w' }]);
    const child = spawn(process.execPath, [fixture, 'embedded', dir, 't', 'g', '300', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(child.stdout, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    const sub = await broker.subscribe({ topic: 't', group: 'g' });
    const [again] = await sub.take(1, { timeoutMs: 5000 });
    expect(again).toMatchObject({ value: 'w', attempt: 2 });
    await again!.ack();
    await broker.close();
  });

  it('group-commits: concurrent publishes share transactions', async () => {
    const broker = EmbeddedBroker.open({ dataDir: mkdtempSync(join(tmpdir(), 'spillway-gc-')) });
    const before = broker.publishCommits;
    await Promise.all(Array.from({ length: 300 }, (_, i) => broker.publish('t', [{ value: String(i) }])));
    expect(broker.publishCommits - before).toBeLessThan(10);
    await broker.close();
  });

  it("commits a worker's hand-off whole: its results and its acks, or neither", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-handoff-'));
    const broker = EmbeddedBroker.open({ dataDir: dir });
    await broker.publish('requests', [{ value: 'r1' }, { value: 'r2' }]);
    const sub = await broker.subscribe({ topic: 'requests', group: 'workers' });
    const [r1, r2] = await sub.take(2);
    const before = broker.publishCommits;
    await broker.publishAndAck('results', [{ value: 'done r1' }], [r1!]);
    expect(broker.publishCommits - before).toBe(1);
    expect(await broker.backlog('requests', 'workers')).toBe(1);

    // A results topic that refuses writes (a trigger another connection adds): the publish fails
    // inside the transaction, so the ack in it is undone too and r2 stays leased.
    const other = new Database(join(dir, 'queue.db'));
    other.exec(`CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.topic = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    await expect(broker.publishAndAck('refused', [{ value: 'done r2' }], [r2!])).rejects.toThrow(/refused/);
    expect(await broker.backlog('requests', 'workers')).toBe(1);
    expect(await broker.backlog('refused', 'anyone')).toBe(0);
    await sub.close();
    const next = await broker.subscribe({ topic: 'requests', group: 'workers' });
    const [again] = await next.take(1, { timeoutMs: 5000 });
    expect(again).toMatchObject({ value: 'r2', attempt: 2 });
    other.exec('DROP TRIGGER refuse');
    other.close();
    await broker.publishAndAck('refused', [{ value: 'done r2' }], [again!]);
    expect(await broker.backlog('requests', 'workers')).toBe(0);
    await next.close();
    await broker.close();
  });

  it('drops messages past a topic retention even when unread', async () => {
    const broker = EmbeddedBroker.open({ dataDir: mkdtempSync(join(tmpdir(), 'spillway-retention-')) });
    await broker.ensureTopic('beats', { retentionMs: 1000 });
    await broker.publish('beats', [{ value: 'old' }]);
    broker.compact(Date.now() + 2000);
    expect(await broker.backlog('beats', 'anyone')).toBe(0);
    await broker.close();
  });

  it('keeps messages of a topic with a retention for a late subscriber, even once every group has read them', async () => {
    const broker = EmbeddedBroker.open({ dataDir: mkdtempSync(join(tmpdir(), 'spillway-keep-')) });
    await broker.ensureTopic('control', { retentionMs: 60_000 });
    await broker.publish('control', [{ value: 'cancel' }]);
    const early = await broker.subscribe({ topic: 'control', group: 'early' });
    await Promise.all((await early.take(1)).map((d) => d.ack()));
    broker.compact();
    const late = await broker.subscribe({ topic: 'control', group: 'late', from: 'earliest', ephemeral: true });
    expect((await late.take(1, { timeoutMs: 1000 })).map((d) => d.value)).toEqual(['cancel']);
    await Promise.all([early.close(), late.close()]);
    await broker.close();
  });

  it('drops messages every group has acked and keeps the rest', async () => {
    const broker = EmbeddedBroker.open({ dataDir: mkdtempSync(join(tmpdir(), 'spillway-compact-')) });
    await broker.publish('t', [{ value: '1' }, { value: '2' }]);
    const a = await broker.subscribe({ topic: 't', group: 'a' });
    const b = await broker.subscribe({ topic: 't', group: 'b' });
    const fromA = await a.take(2);
    await Promise.all(fromA.map((d) => d.ack()));
    broker.compact();
    // Group b has read nothing yet, so both messages must survive compaction.
    expect((await b.take(2)).map((d) => d.value)).toEqual(['1', '2']);
    await Promise.all([a.close(), b.close()]);
    await broker.close();
  });

  it('a sole reader takes and acks while another process holds the write lock on the queue', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'spillway-sole-'));
    const broker = EmbeddedBroker.open({ dataDir, busyTimeoutMs: 50 });
    await broker.publish('t', [{ value: '1' }, { value: '2' }]);
    const sole = await broker.subscribe({ topic: 't', group: 'tap', soleReader: true });
    // Another process's writer, stopped inside its transaction (a frozen tap, before this change).
    const other = new Database(join(dataDir, 'queue.db'));
    other.exec('BEGIN IMMEDIATE');
    try {
      const taken = await sole.take(2, { timeoutMs: 1000 });
      expect(taken.map((d) => d.value)).toEqual(['1', '2']);
      await Promise.all(taken.map((d) => d.ack()));
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await sole.close();
    await broker.close();
  });

  it('keeps what a sole reader has not read through compaction, and drops it once read', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'spillway-sole-compact-'));
    const broker = EmbeddedBroker.open({ dataDir });
    const first = await broker.subscribe({ topic: 't', group: 'tap', soleReader: true });
    await broker.publish('t', [{ value: '1' }, { value: '2' }]);
    const [one] = await first.take(1);
    await one!.ack();
    await first.close();
    const serving = await broker.subscribe({ topic: 't', group: 'workers' });
    const all = await serving.take(2);
    await Promise.all(all.map((d) => d.ack()));
    broker.compact();
    const second = await broker.subscribe({ topic: 't', group: 'tap', soleReader: true });
    const [two] = await second.take(2);
    expect(two!.value).toBe('2');
    await two!.ack();
    await second.close();
    broker.compact();
    const reader = new Database(join(dataDir, 'queue.db'), { readonly: true });
    expect(reader.prepare("SELECT COUNT(*) FROM messages WHERE topic = 't'").pluck().get()).toBe(0);
    reader.close();
    await serving.close();
    await broker.close();
  });
});
