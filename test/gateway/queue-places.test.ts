import { describe, expect, it } from 'vitest';
import type { QueuePlace } from '../../src/brokers/broker.js';
import { QueuePlaces, startRate } from '../../src/gateway/queue-places.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';

const record = (id: string, status: PredictionRecord['status'] = 'queued'): PredictionRecord => ({
  id,
  model: 'sleep',
  status,
  metadata: {},
  created_at: new Date(0).toISOString(),
  attempts: 0,
  metrics: {},
});

function places(o: { place?: () => Promise<QueuePlace | null>; rate?: number | null } = {}) {
  const clock = { now: 1_000_000 };
  const calls = { positionOf: 0 };
  const p = new QueuePlaces({
    broker: {
      positionOf: async () => {
        calls.positionOf += 1;
        return (o.place ?? (async () => ({ ahead: 3, exact: true })))();
      },
    },
    startRate: async () => (o.rate === undefined ? 2 : o.rate),
    logger: { debug: () => undefined },
    now: () => clock.now,
  });
  return { p, clock, calls };
}

describe('QueuePlaces', () => {
  it('shows the place and an ETA of (ahead + 0.5) / drain rate from the reading', async () => {
    const { p, clock } = places();
    p.remember('a', { topic: 'topic', position: '7' });
    const shown = await p.withPlace(record('a'));
    // 3 ahead at 2 per second: the 4th start from now, on average 1.75 s away.
    expect(shown.queue).toEqual({
      position: 3,
      ahead_exact: true,
      eta: new Date(clock.now + 1750).toISOString(),
      measured_at: new Date(clock.now).toISOString(),
    });
  });

  it('reads the place from the slot a stored record carries when another gateway published it, and never shows the slot', async () => {
    const { p, calls } = places();
    const stored: PredictionRecord = { ...record('b'), queue_slot: { topic: 'topic', position: '9' } };
    const shown = await p.withPlace(stored);
    expect(shown.queue).toMatchObject({ position: 3, ahead_exact: true });
    expect(calls.positionOf).toBe(1);
    expect(shown).not.toHaveProperty('queue_slot');
    expect(await p.withPlace({ ...stored, status: 'running' })).not.toHaveProperty('queue_slot');
  });

  it('reads the broker at most once a second per id', async () => {
    const { p, clock, calls } = places();
    p.remember('a', { topic: 'topic', position: '7' });
    await p.withPlace(record('a'));
    await p.withPlace(record('a'));
    expect(calls.positionOf).toBe(1);
    clock.now += 1000;
    await p.withPlace(record('a'));
    expect(calls.positionOf).toBe(2);
  });

  it('leaves the place out when the broker cannot tell, fails, or nothing is known; and the ETA when nothing drains', async () => {
    const failing = places({ place: async () => Promise.reject(new Error('down')) });
    failing.p.remember('a', { topic: 'topic', position: '7' });
    expect((await failing.p.withPlace(record('a'))).queue).toBeUndefined();
    const taken = places({ place: async () => null });
    taken.p.remember('a', { topic: 'topic', position: '7' });
    expect((await taken.p.withPlace(record('a'))).queue).toBeUndefined();
    expect((await taken.p.withPlace(record('other'))).queue).toBeUndefined();
    const idle = places({ rate: 0 });
    idle.p.remember('a', { topic: 'topic', position: '7' });
    const shown = await idle.p.withPlace(record('a'));
    expect(shown.queue).toMatchObject({ position: 3, ahead_exact: true });
    expect(shown.queue?.eta).toBeUndefined();
  });

  it('shows no place once the record is not queued, and forgets the request', async () => {
    const { p, calls } = places();
    p.remember('a', { topic: 'topic', position: '7' });
    expect((await p.withPlace(record('a', 'running'))).queue).toBeUndefined();
    expect((await p.withPlace(record('a'))).queue).toBeUndefined();
    expect(calls.positionOf).toBe(0);
  });

  it('takes the start rate from the workers\' measured speed, and the drain rate only until that is known', () => {
    expect(startRate({ drain_rate_per_s: 12, per_worker_rate_per_s: 20, workers_seen: 2 })).toBe(40);
    expect(startRate({ drain_rate_per_s: 12, per_worker_rate_per_s: null, workers_seen: 2 })).toBe(12);
    expect(startRate({ drain_rate_per_s: 12, per_worker_rate_per_s: 20, workers_seen: 0 })).toBe(12);
  });
});
