import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Admission, type AdmissionContext } from '../../src/gateway/admission.js';
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
function context(): AdmissionContext & { waiters: Waiters } {
  const store = SqliteStore.open({ dataDir: mkdtempSync(join(tmpdir(), 'spillway-admission-')), retentionMs: 60_000 });
  stores.push(store);
  const backpressure = new Backpressure({ limits: new Map([['echo', 1]]), backlog: async () => 0, workersSeen: () => 1, cacheMs: 60_000 });
  return { store, backpressure, waiters: new Waiters(10) };
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
    first.holdWaiter(5);
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

  it('a client that does not wait holds no waiter', async () => {
    const ctx = context();
    const admission = await Admission.claim(ctx, envelope(), { keyHeaders: undefined, body: {}, log });
    admission.holdWaiter(0);
    expect(admission.waiter).toBeUndefined();
    expect(ctx.waiters.size).toBe(0);
    await admission.release();
  });
});
