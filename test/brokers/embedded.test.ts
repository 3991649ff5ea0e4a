import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
});
