import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Admission, type AdmissionContext } from '../../src/gateway/admission.js';
import { anonymousCaller } from '../../src/gateway/tenancy/authenticator.js';
import { TenantLimits, type LimitSettings } from '../../src/gateway/tenancy/tenant-limits.js';
import { Backpressure } from '../../src/gateway/backpressure.js';
import { Waiters } from '../../src/gateway/waiters.js';
import { requestEnvelope } from '../../src/protocol/envelope.js';
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js';

const log = pino({ level: 'silent' });
const stores: SqliteStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

/** A real store, a queue limited to one request with nothing in it yet, and room for waiters. */
function context(tenantLimits: LimitSettings = {}): AdmissionContext & { waiters: Waiters } {
  const store = SqliteStore.open({ dataDir: mkdtempSync(join(tmpdir(), 'spillway-admission-')), retentionMs: 60_000 });
  stores.push(store);
  const backpressure = new Backpressure({ limits: new Map([['echo', 1]]), backlog: async () => 0, workersSeen: () => 1, cacheMs: 60_000 });
  const limits = new TenantLimits({ state: store, defaults: tenantLimits, tenants: {}, retentionMs: 60_000 });
  return { store, backpressure, waiters: new Waiters(10), limits };
}

let ids = 0;
const envelope = () =>
  requestEnvelope({ id: `p${++ids}`, model: 'echo', input: 'x', metadata: {}, created_at: new Date().toISOString() });
const withKey = (key: string) => ({ keyHeaders: [key], body: { input: 'x' }, log });

describe('Admission', () => {
  it('release gives back the key, the queue slot and the waiter, once, whichever step had been reached', async () => {
    const ctx = context();
    const first = await Admission.claim(ctx, envelope(), withKey('k1'));
    await first.takeSlot();
    await first.holdCappedWaiter(anonymousCaller, 5);
    expect(ctx.waiters.size).toBe(1);
    await first.release();
    await first.release();
    expect(ctx.waiters.size).toBe(0);

    // The key is free again, and so is the model's only slot.
    const retry = await Admission.claim(ctx, envelope(), withKey('k1'));
    expect(retry.original).toBeUndefined();
    await retry.takeSlot();
    retry.accepted();
  });

  it('once accepted, release keeps everything: the key stands for the prediction and the slot is used', async () => {
    const ctx = context();
    const accepted = envelope();
    const admission = await Admission.claim(ctx, accepted, withKey('k2'));
    await admission.takeSlot();
    admission.holdWaiter(5);
    admission.accepted();
    await admission.release();
    expect(admission.waiter).toBeDefined();
    expect(ctx.waiters.size).toBe(1);

    const repeat = await Admission.claim(ctx, envelope(), withKey('k2'));
    expect(repeat.original).toMatchObject({ id: accepted.id, status: 'queued' });
    const next = await Admission.claim(ctx, envelope(), { keyHeaders: undefined, body: {}, log });
    await expect(next.takeSlot()).rejects.toMatchObject({ code: 'SPILLWAY_QUEUE_FULL' });
    // A refusal at the slot still frees what was claimed before it.
    await next.release();
  });

  it("release gives back the tenant's places too: its open prediction and its held connection", async () => {
    const ctx = context({ max_queued: 1, max_waiting: 1 });
    const first = await Admission.claim(ctx, envelope(), withKey('k3'));
    await first.takeTenantPlace(anonymousCaller);
    await first.holdCappedWaiter(anonymousCaller, 5);
    expect(first.waiter).toBeDefined();
    const second = await Admission.claim(ctx, envelope(), { keyHeaders: undefined, body: {}, log });
    await expect(second.takeTenantPlace(anonymousCaller)).rejects.toMatchObject({ code: 'SPILLWAY_TENANT_QUEUE_FULL' });
    await second.release();
    await first.release();

    const third = await Admission.claim(ctx, envelope(), { keyHeaders: undefined, body: {}, log });
    await third.takeTenantPlace(anonymousCaller);
    await third.holdCappedWaiter(anonymousCaller, 5);
    expect(third.waiter).toBeDefined();
    // Its held connection is the tenant's only one: another client is not held.
    const fourth = await Admission.claim(ctx, envelope(), { keyHeaders: undefined, body: {}, log });
    await fourth.holdCappedWaiter(anonymousCaller, 5);
    expect(fourth.waiter).toBeUndefined();
    await third.waitEnded();
    await fourth.holdCappedWaiter(anonymousCaller, 5);
    expect(fourth.waiter).toBeDefined();
    await Promise.all([third.release(), fourth.release()]);
  });

  it('a client that does not wait holds no waiter', async () => {
    const ctx = context();
    const admission = await Admission.claim(ctx, envelope(), { keyHeaders: undefined, body: {}, log });
    admission.holdWaiter(0);
    expect(admission.waiter).toBeUndefined();
    expect(ctx.waiters.size).toBe(0);
    await admission.release();
  });
});
