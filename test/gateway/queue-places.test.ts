import { describe, expect, it } from 'vitest';
import type { QueuePlace } from '../../src/brokers/broker.js';
import { QueuePlaces, startRate, startsBefore } from '../../src/gateway/queue-places.js';
import type { Lane } from '../../src/protocol/topics.js';
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

function places(o: { place?: () => Promise<QueuePlace | null>; rate?: number | null; lanes?: readonly Lane[]; waiting?: Record<string, number> } = {}) {
  const clock = { now: 1_000_000 };
  const calls = { positionOf: 0 };
  const p = new QueuePlaces({
    broker: {
      positionOf: async () => {
        calls.positionOf += 1;
        return (o.place ?? (async () => ({ ahead: 3, exact: true })))();
      },
      queueStats: async (topic) => ({ waiting: o.waiting?.[topic] ?? 0, leased: 0, oldestWaitingPublishedAt: null }),
    },
    ...(o.lanes === undefined ? {} : { lanes: () => o.lanes! }),
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

  it('counts, for the ETA, what the other lanes start first: their weighted turns, and every higher-priority request', () => {
    const lane = (topic: string, weight: number, priority: Lane['priority'] = 'normal'): Lane => ({ topic, tenant: topic, weight, priority });
    const own = lane('own', 1);
    // 3 ahead in its own lane: it is given in the 4th turn; a lane of weight 2 gives 2 a turn,
    // 7 by then (3.5 turns), or all it holds if that is less.
    expect(startsBefore(3, own, [{ lane: own, waiting: 4 }, { lane: lane('big', 2), waiting: 100 }])).toBe(3 + 7);
    expect(startsBefore(3, own, [{ lane: own, waiting: 4 }, { lane: lane('big', 2), waiting: 5 }])).toBe(3 + 5);
    // A lane of weight 4 needs ⌈4 ÷ 4⌉ = 1 turn: the others give half a turn.
    expect(startsBefore(3, lane('heavy', 4), [{ lane: lane('one', 1), waiting: 10 }])).toBe(3 + 0.5);
    // Higher tiers go first, all of them; lower ones wait.
    expect(startsBefore(0, own, [{ lane: lane('urgent', 1, 'high'), waiting: 20 }, { lane: lane('later', 1, 'low'), waiting: 50 }])).toBe(20);
  });

  it('with lanes, the ETA counts their starts before its own', async () => {
    const lanes: Lane[] = [
      { topic: 'topic', tenant: undefined, weight: 1, priority: 'normal' },
      { topic: 'flood', tenant: 'flood', weight: 1, priority: 'normal' },
    ];
    const { p, clock } = places({ lanes, waiting: { topic: 4, flood: 1000 } });
    p.remember('a', { topic: 'topic', position: '7' });
    const shown = await p.withPlace(record('a'));
    // 3 ahead in its lane and 3.5 turns of the flood's: 6.5 starts before it, at 2 per second.
    expect(shown.queue).toMatchObject({ position: 3, eta: new Date(clock.now + ((3 + 3.5 + 0.5) / 2) * 1000).toISOString() });
  });

  it('takes the start rate from the workers\' measured speed, and the drain rate only until that is known', () => {
    expect(startRate({ drain_rate_per_s: 12, per_worker_rate_per_s: 20, workers_seen: 2 })).toBe(40);
    expect(startRate({ drain_rate_per_s: 12, per_worker_rate_per_s: null, workers_seen: 2 })).toBe(12);
    expect(startRate({ drain_rate_per_s: 12, per_worker_rate_per_s: 20, workers_seen: 0 })).toBe(12);
  });
});
