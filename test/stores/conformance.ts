import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { openStore, type StoreSettings } from '../../src/stores/open-store.js';
import type { NewCallbackDelivery, RateBucket, RateDecision, ResultStore, StoredApiKey, StoredNotice } from '../../src/stores/store.js';
import { RemoteStore } from './remote-store.js';

export interface StoreHarness {
  /**
   * Settings naming a store of its own (a fresh folder, a fresh key prefix on a shared server):
   * each call's store starts empty. Plain data, so another process opens the same store from it.
   */
  settings(options: { retentionMs: number }): StoreSettings;
}

/** How long anything that should happen "soon" may take on a loaded machine before a test fails. */
const patienceMs = 15_000;
const eventually = <T>(check: () => T | Promise<T>): Promise<T> => vi.waitFor(check, { timeout: patienceMs, interval: 20 });

/** A prediction record of `id`, queued unless `fields` say otherwise. */
export const record = (id: string, fields: Partial<PredictionRecord> = {}): PredictionRecord => ({
  id,
  model: 'iris',
  status: 'queued',
  metadata: {},
  created_at: '2026-01-01T00:00:00.000Z',
  attempts: 0,
  metrics: {},
  ...fields,
});

// Each claim's createdAt follows from its id, so a test can tell whose claim it reads.
const claim = (id: string, fingerprint = 'f1', key = 'k1') => ({
  key,
  fingerprint,
  id,
  createdAt: new Date(Date.UTC(2026, 0, 1) + Number(id.replace(/\D/g, '')) * 1000).toISOString(),
});

const delivery = (predictionId: string, event: NewCallbackDelivery['event'] = 'completed', webhookId = `msg_${predictionId}_${event}_0`): NewCallbackDelivery => ({
  webhookId,
  predictionId,
  event,
  url: 'http://127.0.0.1/hooks',
  body: `{"id":"${predictionId}","event":"${event}"}`,
});

const apiKey = (id: string, createdAt: string, fields: Partial<StoredApiKey> = {}): StoredApiKey => ({
  id,
  tenant: 'acme',
  scopes: ['predict'],
  hash: 'ab'.repeat(32),
  createdAt,
  ...fields,
});

const bucket = (name: string, ratePerS: number, burst: number): RateBucket => ({ name, ratePerS, burst });

/** The wait a refused take gives (failing the test if it was allowed). */
const retryAfter = (decision: RateDecision): number => {
  expect(decision.allowed).toBe(false);
  return decision.allowed ? 0 : decision.retryAfterMs;
};

/** Waits at least `ms`: only ever where waiting longer changes nothing the test checks. */
const atLeast = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const hourMs = 3_600_000;
const dayMs = 86_400_000;

/** The behaviour every result store adapter must show, run unchanged against each of them. */
export function describeStoreConformance(name: string, harness: () => StoreHarness): void {
  describe(`store conformance: ${name}`, () => {
    const opened: { close(): Promise<void> }[] = [];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((handle) => handle.close()));
    });

    /** A new, empty store: its settings and a first handle. */
    async function fresh(retentionMs = 3_600_000): Promise<{ settings: StoreSettings; store: ResultStore }> {
      const settings = harness().settings({ retentionMs });
      return { settings, store: await another(settings) };
    }
    async function another(settings: StoreSettings): Promise<ResultStore> {
      const store = await openStore(settings);
      opened.push(store);
      return store;
    }
    async function elsewhere(settings: StoreSettings, count: number): Promise<RemoteStore[]> {
      const remotes = await Promise.all(Array.from({ length: count }, () => RemoteStore.open(settings)));
      opened.push(...remotes);
      return remotes;
    }

    describe('records', () => {
      it('returns what was put, to every handle, and nothing for unknown ids', async () => {
        const { settings, store } = await fresh();
        const p = record(randomUUID());
        expect(await store.put([p])).toEqual([p]);
        expect(await store.get(p.id)).toEqual(p);
        expect(await (await another(settings)).get(p.id)).toEqual(p);
        expect(await store.get(randomUUID())).toBeUndefined();
        await store.ping();
      });

      it('moves status forward only, and the first terminal record wins', async () => {
        const { store } = await fresh();
        const queued = record('p1');
        const running = record('p1', { status: 'running', attempts: 1 });
        const succeeded = record('p1', { status: 'succeeded', attempts: 1, output: { label: 'a' } });
        const failed = record('p1', { status: 'failed', attempts: 2 });
        expect(await store.put([running])).toEqual([running]);
        // Out of order: a late queued record changes nothing.
        expect(await store.put([queued])).toEqual([]);
        expect(await store.get('p1')).toEqual(running);
        expect(await store.put([succeeded])).toEqual([succeeded]);
        // put answers what it wrote: nothing here, so a counter of outcomes counts the first only.
        expect(await store.put([running, queued, failed, succeeded])).toEqual([]);
        expect(await store.get('p1')).toEqual(succeeded);
      });

      it('writes a record delivered twice in one batch once, and each record of a batch on its own merits', async () => {
        const { store } = await fresh();
        const done = record('p1', { status: 'succeeded', attempts: 1 });
        const other = record('p2', { status: 'running', attempts: 1 });
        expect(await store.put([done, done, other])).toEqual([done, other]);
        expect(await store.get('p1')).toEqual(done);
        expect(await store.get('p2')).toEqual(other);
      });

      it("lets a later attempt's running record replace an earlier one, never the reverse", async () => {
        const { store } = await fresh();
        await store.put([record('p1', { status: 'running', attempts: 1, worker: 'w1' })]);
        await store.put([record('p1', { status: 'running', attempts: 2, worker: 'w2' })]);
        expect((await store.get('p1'))?.worker).toBe('w2');
        expect(await store.put([record('p1', { status: 'running', attempts: 1, worker: 'w1' })])).toEqual([]);
        expect((await store.get('p1'))?.worker).toBe('w2');
      });

      it('starts over for a replayed generation: its records supersede the old terminal one, never the reverse', async () => {
        const { store } = await fresh();
        await store.put([record('p1', { status: 'failed', attempts: 3 })]);
        await store.put([record('p1', { status: 'queued', replay: 1 })]);
        expect(await store.get('p1')).toMatchObject({ status: 'queued', replay: 1 });
        // A late copy of the first generation's outcome changes nothing.
        expect(await store.put([record('p1', { status: 'succeeded', attempts: 3 })])).toEqual([]);
        await store.put([record('p1', { status: 'running', attempts: 1, replay: 1 })]);
        await store.put([record('p1', { status: 'running', attempts: 2, replay: 1 })]);
        expect(await store.get('p1')).toMatchObject({ status: 'running', attempts: 2, replay: 1 });
        await store.put([record('p1', { status: 'succeeded', attempts: 2, replay: 1 })]);
        await store.put([record('p1', { status: 'failed', attempts: 3, replay: 1 })]);
        expect(await store.get('p1')).toMatchObject({ status: 'succeeded', replay: 1 });
      });

      it('keeps the first of concurrent final records put from several processes, and says so to its writer only', async () => {
        const { settings, store } = await fresh();
        const remotes = await elsewhere(settings, 3);
        const finals = (from: string) =>
          Array.from({ length: 10 }, (_, i) => [[record('p1', { status: i % 2 === 0 ? 'succeeded' : 'failed', attempts: 1, worker: `${from}-${i}` })]] as [PredictionRecord[]]);
        const answers = await Promise.all([
          ...remotes.map((remote, r) => remote.callMany('put', finals(`r${r}`))),
          Promise.all(finals('here').map(([records]) => store.put(records))),
        ]);
        const written = answers.flat(2);
        expect(written).toHaveLength(1);
        expect(await store.get('p1')).toEqual(written[0]);
      });
    });

    describe('retention', () => {
      // Short enough to wait for, long enough that "right after writing" is well before it even
      // on a loaded machine; expiry is waited for, never slept on.
      const retentionMs = 2000;

      it('forgets records some time after the retention period, not right away', async () => {
        const { store } = await fresh(retentionMs);
        const p = record(randomUUID());
        await store.put([p]);
        expect(await store.get(p.id)).toEqual(p);
        await eventually(async () => expect(await store.get(p.id)).toBeUndefined());
      });

      it('frees an idempotency key some time after the retention period, not right away', async () => {
        const { store } = await fresh(retentionMs);
        expect(await store.claimIdempotencyKey(claim('p1'))).toEqual({ claimed: true });
        expect(await store.claimIdempotencyKey(claim('p2', 'other'))).toMatchObject({ claimed: false, id: 'p1' });
        await eventually(async () => expect(await store.claimIdempotencyKey(claim('p2', 'other'))).toEqual({ claimed: true }));
        // The key is held again, now for the new claim.
        expect(await store.claimIdempotencyKey(claim('p3'))).toMatchObject({ claimed: false, id: 'p2', fingerprint: 'other' });
      });
    });

    describe('idempotency keys', () => {
      it('of concurrent claims of one free key from several processes exactly one wins; every other sees the holder', async () => {
        const { settings, store } = await fresh();
        const remotes = await elsewhere(settings, 3);
        const claimsOf = (process: number) => Array.from({ length: 10 }, (_, i) => [claim(`p${process}${String(i).padStart(2, '0')}`)] as [ReturnType<typeof claim>]);
        const ask = [...remotes.map((remote, r) => ({ remote, claims: claimsOf(r + 1) })), { remote: undefined, claims: claimsOf(9) }];
        const answers = await Promise.all(
          ask.map(({ remote, claims }) =>
            remote === undefined ? Promise.all(claims.map(([c]) => store.claimIdempotencyKey(c))) : remote.callMany('claimIdempotencyKey', claims),
          ),
        );
        const all = ask.flatMap(({ claims }, i) => claims.map(([c], j) => ({ claim: c, result: answers[i]![j]! })));
        const winners = all.filter((a) => a.result.claimed);
        expect(winners).toHaveLength(1);
        const holder = winners[0]!.claim;
        for (const { result } of all.filter((a) => !a.result.claimed)) {
          expect(result).toEqual({ claimed: false, id: holder.id, fingerprint: holder.fingerprint, createdAt: holder.createdAt });
        }
      });

      it('answers a later claim with the holder, whatever its fingerprint, and keys are independent', async () => {
        const { store } = await fresh();
        expect(await store.claimIdempotencyKey(claim('p1'))).toEqual({ claimed: true });
        expect(await store.claimIdempotencyKey(claim('p2', 'other'))).toEqual({ claimed: false, id: 'p1', fingerprint: 'f1', createdAt: claim('p1').createdAt });
        expect(await store.claimIdempotencyKey(claim('p3', 'f1', 'k2'))).toEqual({ claimed: true });
      });

      it('frees a key released by its holder, and only by its holder', async () => {
        const { settings, store } = await fresh();
        const other = await another(settings);
        await store.claimIdempotencyKey(claim('p1'));
        await other.releaseIdempotencyKey('k1', 'someone-else');
        expect(await store.claimIdempotencyKey(claim('p2'))).toMatchObject({ claimed: false, id: 'p1' });
        await other.releaseIdempotencyKey('k1', 'p1');
        expect(await store.claimIdempotencyKey(claim('p2'))).toEqual({ claimed: true });
        // Releasing a free key is harmless.
        await store.releaseIdempotencyKey('k3', 'p1');
      });
    });

    describe('callback schedule', () => {
      it('schedules a webhook once however often it is enqueued, and says how many were new', async () => {
        const { settings, store } = await fresh();
        expect(await store.enqueueCallbacks([delivery('a'), delivery('a')])).toBe(1);
        expect(await (await another(settings)).enqueueCallbacks([delivery('a'), delivery('b')])).toBe(1);
        expect(await store.enqueueCallbacks([])).toBe(0);
        const [view, ...rest] = await store.callbackDeliveries('a');
        expect(rest).toEqual([]);
        expect(view).toMatchObject({ event: 'completed', webhook_id: 'msg_a_completed_0', state: 'pending', attempts: 0 });
        expect(view?.next_attempt_at).toBeDefined();
        expect(await store.callbackDeliveries('unknown')).toEqual([]);
      });

      it('leases each due delivery to exactly one of several concurrent claimers across processes', async () => {
        const { settings, store } = await fresh();
        const owed = Array.from({ length: 30 }, (_, i) => delivery(`p${i}`));
        await store.enqueueCallbacks(owed);
        const remotes = await elsewhere(settings, 3);
        const rounds = Array.from({ length: 4 }, () => [3, 60_000] as [number, number]);
        const answers = await Promise.all([
          ...remotes.map((remote) => remote.callMany('claimCallbacks', rounds)),
          Promise.all(rounds.map(([limit, leaseMs]) => store.claimCallbacks(limit, leaseMs))),
        ]);
        const claimed = answers.flat(2);
        for (const batch of answers.flat()) expect(batch.length).toBeLessThanOrEqual(3);
        const rest = await store.claimCallbacks(100, 60_000);
        const ids = [...claimed, ...rest].map((c) => c.webhookId);
        expect(ids.sort()).toEqual(owed.map((d) => d.webhookId).sort());
        expect(await store.claimCallbacks(100, 60_000)).toEqual([]);
        // A claim hands over the delivery as enqueued, with the attempts made so far.
        const sample = claimed[0]!;
        expect(sample).toMatchObject({ ...owed.find((d) => d.webhookId === sample.webhookId), attempts: 0 });
      });

      it('makes a delivery claimable again once its lease runs out, and the stale holder cannot record', async () => {
        const { store } = await fresh();
        await store.enqueueCallbacks([delivery('a')]);
        const [first] = await store.claimCallbacks(1, 1000);
        expect(first).toMatchObject({ webhookId: 'msg_a_completed_0', attempts: 0 });
        expect(await store.claimCallbacks(1, 1000)).toEqual([]);
        const again = await eventually(async () => {
          const [c] = await store.claimCallbacks(1, 60_000);
          expect(c).toBeDefined();
          return c!;
        });
        expect(again).toMatchObject({ webhookId: first!.webhookId, attempts: 0 });
        expect(again.leaseToken).not.toBe(first!.leaseToken);
        expect(await store.recordCallbackAttempt({ webhookId: first!.webhookId, leaseToken: first!.leaseToken, state: 'delivered' })).toBe(false);
        expect(await store.recordCallbackAttempt({ webhookId: again.webhookId, leaseToken: again.leaseToken, state: 'delivered', status: 200 })).toBe(true);
        expect(await store.callbackDeliveries('a')).toEqual([expect.objectContaining({ state: 'delivered', attempts: 1 })]);
      });

      it('retries a pending delivery at its time, counting attempts; a lease token recorded once is spent', async () => {
        const { settings, store } = await fresh();
        const other = await another(settings);
        await store.enqueueCallbacks([delivery('later'), delivery('now')]);
        const claimed = await store.claimCallbacks(10, 60_000);
        const lease = (id: string) => claimed.find((c) => c.predictionId === id)!;
        expect(await store.recordCallbackAttempt({ webhookId: lease('now').webhookId, leaseToken: 'stale', state: 'delivered' })).toBe(false);
        const nextAttemptAt = Date.now() + 3_600_000;
        expect(await store.recordCallbackAttempt({ ...lease('later'), state: 'pending', status: 503, error: 'answered 503', nextAttemptAt })).toBe(true);
        expect(await store.recordCallbackAttempt({ ...lease('now'), state: 'pending', status: 500, error: 'answered 500', nextAttemptAt: Date.now() })).toBe(true);
        expect(await store.recordCallbackAttempt({ ...lease('now'), state: 'delivered' })).toBe(false);
        expect(await store.callbackDeliveries('later')).toEqual([
          { event: 'completed', webhook_id: 'msg_later_completed_0', state: 'pending', attempts: 1, last_status: 503, last_error: 'answered 503', next_attempt_at: new Date(nextAttemptAt).toISOString() },
        ]);
        const again = await other.claimCallbacks(10, 60_000);
        expect(again.map((c) => [c.webhookId, c.attempts])).toEqual([['msg_now_completed_0', 1]]);
        expect(await other.recordCallbackAttempt({ ...again[0]!, state: 'delivered', status: 204 })).toBe(true);
        const [view] = await store.callbackDeliveries('now');
        expect(view).toMatchObject({ state: 'delivered', attempts: 2, last_status: 204 });
        expect(view?.delivered_at).toBeDefined();
        expect(view?.next_attempt_at).toBeUndefined();
      });

      it('ends a delivery as delivered, gone or dead, none of them claimable again', async () => {
        const { store } = await fresh();
        await store.enqueueCallbacks([delivery('d'), delivery('g'), delivery('x')]);
        const claimed = await store.claimCallbacks(10, 60_000);
        const lease = (id: string) => claimed.find((c) => c.predictionId === id)!;
        const before = Date.now();
        await store.recordCallbackAttempt({ ...lease('d'), state: 'delivered', status: 200 });
        await store.recordCallbackAttempt({ ...lease('g'), state: 'gone', status: 410 });
        await store.recordCallbackAttempt({ ...lease('x'), state: 'dead', error: 'connection refused' });
        expect(await store.claimCallbacks(10, 60_000)).toEqual([]);
        const [delivered] = await store.callbackDeliveries('d');
        expect(delivered).toMatchObject({ state: 'delivered', attempts: 1, last_status: 200 });
        expect(Date.parse(delivered!.delivered_at!)).toBeGreaterThanOrEqual(before - 1000);
        expect(await store.callbackDeliveries('g')).toEqual([{ event: 'completed', webhook_id: 'msg_g_completed_0', state: 'gone', attempts: 1, last_status: 410 }]);
        expect(await store.callbackDeliveries('x')).toEqual([{ event: 'completed', webhook_id: 'msg_x_completed_0', state: 'dead', attempts: 1, last_error: 'connection refused' }]);
      });

      it("lists a prediction's webhooks oldest first", async () => {
        const { store } = await fresh();
        // Ids sort against the order they were owed in, so only the time of enqueueing orders them.
        await store.enqueueCallbacks([delivery('p', 'running', 'msg_z')]);
        const first = Date.now();
        await eventually(() => expect(Date.now()).toBeGreaterThan(first));
        await store.enqueueCallbacks([delivery('p', 'completed', 'msg_a'), delivery('other', 'completed', 'msg_m')]);
        expect((await store.callbackDeliveries('p')).map((v) => [v.webhook_id, v.event])).toEqual([
          ['msg_z', 'running'],
          ['msg_a', 'completed'],
        ]);
      });

      it('resends a dead webhook with a fresh budget and the same id, and only a dead one', async () => {
        const { settings, store } = await fresh();
        await store.enqueueCallbacks([delivery('dead'), delivery('done'), delivery('waiting')]);
        const claimed = await store.claimCallbacks(10, 60_000);
        const lease = (id: string) => claimed.find((c) => c.predictionId === id)!;
        await store.recordCallbackAttempt({ ...lease('dead'), state: 'dead', status: 500 });
        await store.recordCallbackAttempt({ ...lease('done'), state: 'delivered', status: 200 });
        await store.recordCallbackAttempt({ ...lease('waiting'), state: 'pending', nextAttemptAt: Date.now() + 3_600_000 });
        const operator = await another(settings);
        expect(await operator.resendCallback('msg_done_completed_0')).toBe(false);
        expect(await operator.resendCallback('msg_waiting_completed_0')).toBe(false);
        expect(await operator.resendCallback('msg_unknown')).toBe(false);
        expect(await operator.resendCallback('msg_dead_completed_0')).toBe(true);
        expect(await operator.resendCallback('msg_dead_completed_0')).toBe(false);
        expect(await store.callbackDeliveries('dead')).toEqual([expect.objectContaining({ state: 'pending', attempts: 0 })]);
        expect((await store.claimCallbacks(10, 60_000)).map((c) => [c.webhookId, c.attempts])).toEqual([['msg_dead_completed_0', 0]]);
      });

      it('keeps the tenant and traceparent a delivery was enqueued with through every claim, and gives none to one enqueued without', async () => {
        const { settings, store } = await fresh();
        const owed = { ...delivery('a'), tenant: 'acme', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
        await store.enqueueCallbacks([owed, delivery('b')]);
        const dispatcher = await another(settings);
        const claimed = await dispatcher.claimCallbacks(10, 60_000);
        const lease = (id: string) => claimed.find((c) => c.predictionId === id)!;
        expect(lease('a')).toEqual({ ...owed, attempts: 0, leaseToken: expect.any(String) });
        expect(lease('b')).toEqual({ ...delivery('b'), attempts: 0, leaseToken: expect.any(String) });
        expect(lease('b')).not.toHaveProperty('tenant');
        expect(lease('b')).not.toHaveProperty('traceparent');
        await dispatcher.recordCallbackAttempt({ ...lease('a'), state: 'pending', status: 503, nextAttemptAt: Date.now() });
        expect(await store.claimCallbacks(10, 60_000)).toEqual([{ ...owed, attempts: 1, leaseToken: expect.any(String) }]);
      });
    });

    describe('api keys', () => {
      it('returns what was put to every handle, lists keys oldest first, and replaces a key by its id', async () => {
        const { settings, store } = await fresh();
        const other = await another(settings);
        const first = apiKey('k1', '2026-01-01T12:00:00.000Z', { tenant: 'other', scopes: [] });
        const second = apiKey('k2', '2026-01-02T00:00:00.000Z');
        // Later than k3 although it sorts before it as text: keys are ordered by time, not by spelling.
        const fourth = apiKey('k4', '2026-01-02T23:00:00-05:00', {
          name: "alice's laptop",
          scopes: ['predict', 'read'],
          expiresAt: '2026-02-01T00:00:00.000Z',
          limits: { ratePerS: 5, burst: 10, maxQueued: 100, maxWaiting: 3 },
        });
        const third = apiKey('k3', '2026-01-03T00:00:00.000Z', { limits: { maxQueued: 0 } });
        for (const key of [second, fourth, first, third]) await store.putApiKey(key);
        expect(await other.getApiKey('k1')).toEqual(first);
        expect(await other.getApiKey('k4')).toEqual(fourth);
        expect(await other.getApiKey('unknown')).toBeUndefined();
        expect(await other.listApiKeys()).toEqual([first, second, third, fourth]);
        // A revoke replaces the key whole: the new field is there, a field it dropped is gone, its place stays.
        const { name: _name, ...unnamed } = fourth;
        const revoked: StoredApiKey = { ...unnamed, revokedAt: '2026-01-05T00:00:00.000Z' };
        await other.putApiKey(revoked);
        expect(await store.getApiKey('k4')).toEqual(revoked);
        expect(await store.listApiKeys()).toEqual([first, second, third, revoked]);
      });

      it('says whether any key was ever created, revoked ones included', async () => {
        const { settings, store } = await fresh();
        expect(await store.hasApiKeys()).toBe(false);
        expect(await store.listApiKeys()).toEqual([]);
        const key = apiKey('k1', '2026-01-01T00:00:00.000Z');
        await store.putApiKey(key);
        const other = await another(settings);
        expect(await other.hasApiKeys()).toBe(true);
        // Revoking the last key must not open the API to everyone.
        await other.putApiKey({ ...key, revokedAt: '2026-01-02T00:00:00.000Z' });
        expect(await store.hasApiKeys()).toBe(true);
      });

      it('keeps keys past the record retention', async () => {
        const { settings, store } = await fresh(500);
        const key = apiKey('k1', '2026-01-01T00:00:00.000Z');
        await store.putApiKey(key);
        const p = record(randomUUID());
        await store.put([p]);
        // The record put after the key is gone: the retention has passed for both.
        await eventually(async () => expect(await store.get(p.id)).toBeUndefined());
        const later = await another(settings);
        expect(await later.getApiKey('k1')).toEqual(key);
        expect(await later.listApiKeys()).toEqual([key]);
        expect(await later.hasApiKeys()).toBe(true);
      });
    });

    describe('token buckets', () => {
      it("allows a full bucket's burst at once, then refuses with the wait for its next token", async () => {
        const { store } = await fresh();
        // One token per 1000 s: none comes back during the test, however slow the machine.
        const slow = bucket('tenant:acme', 0.001, 3);
        const taken: RateDecision[] = [];
        for (let i = 0; i < 3; i++) taken.push(await store.takeTokens([slow]));
        expect(taken.map((d) => [d.allowed, d.buckets[0]?.remaining])).toEqual([
          [true, 2],
          [true, 1],
          [true, 0],
        ]);
        // Full again once every token taken is back (those taken first have begun to trickle back).
        taken.forEach((d, i) => {
          expect(d.buckets[0]!.resetMs).toBeLessThanOrEqual((i + 1) * 1_000_000);
          expect(d.buckets[0]!.resetMs).toBeGreaterThan((i + 1) * 1_000_000 - 100_000);
        });
        const refused = await store.takeTokens([slow]);
        expect(refused.buckets).toEqual([{ remaining: 0, resetMs: expect.any(Number) }]);
        expect(retryAfter(refused)).toBeLessThanOrEqual(1_000_000);
        expect(retryAfter(refused)).toBeGreaterThan(900_000);
      });

      it('never refills a bucket of rate 0, and answers a long but finite wait', async () => {
        const { store } = await fresh();
        const fixed = bucket('fixed', 0, 1);
        const first = await store.takeTokens([fixed]);
        expect(first).toEqual({ allowed: true, buckets: [{ remaining: 0, resetMs: expect.any(Number) }] });
        const refused = await store.takeTokens([fixed]);
        for (const wait of [first.buckets[0]!.resetMs, refused.buckets[0]!.resetMs, retryAfter(refused)]) {
          expect(wait).toBeGreaterThanOrEqual(hourMs);
          expect(wait).toBeLessThanOrEqual(dayMs);
        }
      });

      it('refills over time at its rate, never past its burst', async () => {
        const { store } = await fresh();
        // A token every 200 ms.
        const quick = bucket('quick', 5, 2);
        let refused: RateDecision | undefined;
        for (let i = 0; i < 100 && refused === undefined; i++) {
          const d = await store.takeTokens([quick]);
          if (!d.allowed) refused = d;
        }
        expect(refused).toBeDefined();
        expect(refused!.buckets[0]!.remaining).toBe(0);
        expect(retryAfter(refused!)).toBeGreaterThan(0);
        expect(retryAfter(refused!)).toBeLessThanOrEqual(200);
        const again = await eventually(async () => {
          const d = await store.takeTokens([quick]);
          expect(d.allowed).toBe(true);
          return d;
        });
        expect(again.buckets[0]!.resetMs).toBeLessThanOrEqual(400);
        // Once full it stays full: a take after any longer wait leaves burst - 1.
        await atLeast(again.buckets[0]!.resetMs + 50);
        expect(await store.takeTokens([quick])).toMatchObject({ allowed: true, buckets: [{ remaining: 1 }] });
      });

      it('takes from every bucket or from none, and a refusal waits for the slowest', async () => {
        const { store } = await fresh();
        const tenant = bucket('tenant:acme', 0, 1);
        const model = bucket('tenant:acme:model:iris', 0, 3);
        expect(await store.takeTokens([tenant, model])).toMatchObject({ allowed: true, buckets: [{ remaining: 0 }, { remaining: 2 }] });
        // The tenant's bucket is empty, so the model's keeps its tokens.
        expect(await store.takeTokens([model, tenant])).toMatchObject({ allowed: false, buckets: [{ remaining: 2 }, { remaining: 0 }] });
        expect(await store.takeTokens([model])).toMatchObject({ allowed: true, buckets: [{ remaining: 1 }] });
        expect(await store.takeTokens([])).toEqual({ allowed: true, buckets: [] });

        // One token per 10 000 s and one per 1000 s, both spent: a take of both waits for the slower.
        const slower = bucket('slower', 0.0001, 1);
        const slow = bucket('slow', 0.001, 1);
        expect((await store.takeTokens([slower, slow])).allowed).toBe(true);
        const both = retryAfter(await store.takeTokens([slow, slower]));
        expect(both).toBeGreaterThan(9_900_000);
        expect(both).toBeLessThanOrEqual(10_000_000);
        const one = retryAfter(await store.takeTokens([slow]));
        expect(one).toBeGreaterThan(900_000);
        expect(one).toBeLessThanOrEqual(1_000_000);
      });

      it("keeps a bucket's tokens when its settings change, clamped to the new burst", async () => {
        const { store } = await fresh();
        expect(await store.takeTokens([bucket('b', 0, 5)])).toMatchObject({ allowed: true, buckets: [{ remaining: 4 }] });
        // Burst lowered to 2: the 4 left become 2, and this take leaves 1.
        expect(await store.takeTokens([bucket('b', 0, 2)])).toMatchObject({ allowed: true, buckets: [{ remaining: 1 }] });
        // Raised to 10: not refilled by the change.
        expect(await store.takeTokens([bucket('b', 0, 10)])).toMatchObject({ allowed: true, buckets: [{ remaining: 0 }] });
        // A rate given now refills from the tokens kept, not from a full bucket.
        const refused = await store.takeTokens([bucket('b', 0.001, 10)]);
        expect(retryAfter(refused)).toBeGreaterThan(900_000);
      });

      it('never hands out more than the burst to concurrent takes from several processes', async () => {
        const { settings, store } = await fresh();
        const other = await another(settings);
        const remotes = await elsewhere(settings, 3);
        const shared = bucket('tenant:acme', 0, 12);
        const takes = Array.from({ length: 8 }, () => [[shared]] as [RateBucket[]]);
        const answers = await Promise.all([
          ...remotes.map((remote) => remote.callMany('takeTokens', takes)),
          Promise.all(takes.map(([b]) => store.takeTokens(b))),
          Promise.all(takes.map(([b]) => other.takeTokens(b))),
        ]);
        const allowed = answers.flat().filter((d) => d.allowed);
        // Each take saw the one before it: what is left counts down without a repeat.
        expect(allowed.map((d) => d.buckets[0]!.remaining).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
        expect(await store.takeTokens([shared])).toMatchObject({ allowed: false, buckets: [{ remaining: 0 }] });
      });
    });

    describe('capped sets', () => {
      const set = 'tenant:acme:queued';

      it('never overfills a set under concurrent joins from several processes', async () => {
        const { settings, store } = await fresh();
        const other = await another(settings);
        const remotes = await elsewhere(settings, 3);
        const expiresAt = Date.now() + hourMs;
        const joins = (who: string) => Array.from({ length: 6 }, (_, i) => [set, `${who}-${i}`, 5, expiresAt] as [string, string, number, number]);
        const answers = await Promise.all([
          ...remotes.map((remote, r) => remote.callMany('joinCapped', joins(`r${r}`))),
          Promise.all(joins('here').map((args) => store.joinCapped(...args))),
          Promise.all(joins('there').map((args) => other.joinCapped(...args))),
        ]);
        const results = answers.flat();
        expect(results.filter((r) => r.joined)).toHaveLength(5);
        for (const r of results) expect(r.size).toBeLessThanOrEqual(5);
        expect(await store.joinCapped(set, 'late', 5, expiresAt)).toEqual({ joined: false, size: 5 });
      });

      it('frees a place when a member leaves; strangers and other sets are left alone', async () => {
        const { settings, store } = await fresh();
        const other = await another(settings);
        const later = Date.now() + hourMs;
        expect(await store.joinCapped(set, 'a', 2, later)).toEqual({ joined: true, size: 1 });
        expect(await store.joinCapped(set, 'b', 2, later)).toEqual({ joined: true, size: 2 });
        expect(await store.joinCapped(set, 'c', 2, later)).toEqual({ joined: false, size: 2 });
        expect(await store.joinCapped('tenant:other:queued', 'c', 2, later)).toEqual({ joined: true, size: 1 });
        await other.leaveCapped(set, ['a', 'stranger']);
        await other.leaveCapped(set, []);
        await other.leaveCapped('unknown', ['a']);
        expect(await store.joinCapped(set, 'c', 2, later)).toEqual({ joined: true, size: 2 });
        expect(await store.joinCapped(set, 'a', 2, later)).toEqual({ joined: false, size: 2 });
      });

      it('frees the place of an expired member without a leave, and not before it expires', async () => {
        const { store } = await fresh();
        const expiresAt = Date.now() + 2000;
        expect(await store.joinCapped(set, 'gone', 1, expiresAt)).toEqual({ joined: true, size: 1 });
        const early = await store.joinCapped(set, 'next', 1, Date.now() + hourMs);
        // Refused while the first holds its place (a machine slow enough to get here after it expired rightly lets it in).
        if (early.joined) expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
        else expect(early).toEqual({ joined: false, size: 1 });
        await eventually(async () => expect(await store.joinCapped(set, 'next', 1, Date.now() + hourMs)).toEqual({ joined: true, size: 1 }));
      });

      it('lets a live member join again, even in a full set, and keeps it to its new expiry', async () => {
        const { settings, store } = await fresh();
        const soon = Date.now() + 1000;
        expect(await store.joinCapped(set, 'a', 1, soon)).toEqual({ joined: true, size: 1 });
        expect(await (await another(settings)).joinCapped(set, 'a', 1, Date.now() + hourMs)).toEqual({ joined: true, size: 1 });
        // Past its first expiry it still holds the only place.
        await atLeast(soon - Date.now() + 100);
        expect(await store.joinCapped(set, 'b', 1, Date.now() + hourMs)).toEqual({ joined: false, size: 1 });
      });
    });

    describe('stored notices', () => {
      const final = (id: string) => record(id, { status: 'succeeded', attempts: 1, output: { label: 'a' } });
      const heardBy = (notices: StoredNotice[]) => (id: string) => notices.filter((n) => n.records.some((r) => r.id === id));

      it('reaches listeners on every handle in this process, the announcing one included, as local', async () => {
        const { settings, store } = await fresh();
        const other = await another(settings);
        const onStore: StoredNotice[] = [];
        const onOther: StoredNotice[] = [];
        const gone: StoredNotice[] = [];
        store.onStored((n) => onStore.push(n));
        other.onStored((n) => onOther.push(n));
        const stop = other.onStored((n) => gone.push(n));
        const p = final('p1');
        await store.put([p]);
        store.announceStored([p]);
        await eventually(() => expect(onOther).toEqual([{ records: [p], local: true }]));
        await eventually(() => expect(onStore).toEqual([{ records: [p], local: true }]));
        expect(gone).toEqual([{ records: [p], local: true }]);
        stop();
        const q = final('p2');
        other.announceStored([q]);
        await eventually(() => expect(heardBy(onStore)('p2')).toHaveLength(1));
        // Heard on the same handle as the stopped listener, so that one would have heard it by now.
        await eventually(() => expect(heardBy(onOther)('p2')).toHaveLength(1));
        expect(gone).toHaveLength(1);
        // Nothing to announce is not a notice.
        store.announceStored([]);
      });

      it('reaches a handle in another process, as not local, and each notice arrives once', async () => {
        const { settings, store } = await fresh();
        const [remote] = await elsewhere(settings, 1);
        const heard: StoredNotice[] = [];
        store.onStored((n) => heard.push(n));
        await remote!.listen();

        const there = final('from-there');
        expect(await remote!.call('put', [there])).toEqual([there]);
        await remote!.call('announceStored', [there]);
        await eventually(() => expect(heardBy(heard)('from-there')).toEqual([{ records: [there], local: false }]));

        const here = final('from-here');
        await store.put([here]);
        store.announceStored([here]);
        await eventually(() => expect(heardBy(remote!.notices)('from-here')).toEqual([{ records: [here], local: false }]));

        // A later notice from there has arrived, so an echo of ours (or a repeat of theirs) would have too.
        const later = final('later');
        await remote!.call('put', [later]);
        await remote!.call('announceStored', [later]);
        await eventually(() => expect(heardBy(heard)('later')).toHaveLength(1));
        expect(heardBy(heard)('from-here')).toEqual([{ records: [here], local: true }]);
        expect(heardBy(heard)('from-there')).toHaveLength(1);
      });
    });
  });
}
