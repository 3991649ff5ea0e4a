import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { addKey } from '../helpers/api-keys.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';
import { inBrokerLegSuite, testBrokers } from '../helpers/paths.js';

interface Problem {
  readonly code: string;
  readonly status: number;
}

const deployments: Deployment[] = [];
afterEach(async () => {
  await Promise.all(deployments.splice(0).map((d) => d.close()));
});

async function deployment(options: Parameters<typeof startDeployment>[0] = {}): Promise<Deployment> {
  const d = await startDeployment({ withWorker: false, ...options });
  deployments.push(d);
  return d;
}

/** Revokes and rotations reach a gateway within its key cache (1 s): waited for, never assumed. */
const eventually = <T>(check: () => Promise<T>) => vi.waitFor(check, { timeout: 15_000, interval: 100 });

describe.skipIf(inBrokerLegSuite)('API keys', () => {
  it('are not needed until the first key exists; from then on every route but the probes needs one', async () => {
    const d = await deployment();
    expect((await predict(d.url, 'echo', 'open')).status).toBe(202);

    const { auth } = await addKey(d.store, 'acme', ['predict', 'read']);
    await eventually(async () => expect((await predict(d.url, 'echo', 'x')).status).toBe(401));
    const refused = await predict(d.url, 'echo', 'x');
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="spillway"');
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.body as unknown as Problem).toMatchObject({ code: 'SPILLWAY_UNAUTHENTICATED', status: 401 });
    for (const path of ['/v1/models', '/v1/models/echo', '/metrics', '/v1/predictions/00000000-0000-0000-0000-000000000000']) {
      expect((await request(`${d.url}${path}`)).status, path).toBe(401);
    }
    for (const path of ['/healthz', '/readyz', '/openapi.json', '/v1/schemas']) expect((await request(`${d.url}${path}`)).status, path).toBe(200);

    const accepted = await predict(d.url, 'echo', 'x', auth);
    expect(accepted.status).toBe(202);
    expect((await request(`${d.url}/v1/models`, { headers: auth })).status).toBe(200);
  });

  it('refuses a malformed, unknown, wrong, expired or revoked key with 401 invalid_token', async () => {
    const d = await deployment({ tenancy: { auth: 'keys' } });
    const good = await addKey(d.store, 'acme', ['predict']);
    const expired = await addKey(d.store, 'acme', ['predict'], { expiresAt: new Date(Date.now() - 1000).toISOString() });
    const token = good.auth.authorization.slice('Bearer '.length);
    const wrongSecret = `${token.slice(0, -4)}${token.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    const unknownId = `spw_${'0'.repeat(16)}_${token.slice(-43)}`;
    for (const authorization of ['Basic dXNlcjpwdw==', 'Bearer', 'Bearer not-a-key', `Bearer ${wrongSecret}`, `Bearer ${unknownId}`, expired.auth.authorization]) {
      const res = await predict(d.url, 'echo', 'x', { authorization });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get('www-authenticate'), authorization).toBe('Bearer realm="spillway", error="invalid_token"');
      expect((res.body as unknown as Problem).code).toBe('SPILLWAY_UNAUTHENTICATED');
    }
    // The scheme is case-insensitive.
    expect((await predict(d.url, 'echo', 'x', { authorization: `bearer ${token}` })).status).toBe(202);

    const key = await d.store.getApiKey(good.id);
    await d.store.putApiKey({ ...key!, revokedAt: new Date().toISOString() });
    await eventually(async () => expect((await predict(d.url, 'echo', 'x', good.auth)).status).toBe(401));
  });

  it('checks scopes: 403 insufficient_scope names the one the route needs', async () => {
    const d = await deployment();
    const predictOnly = await addKey(d.store, 'acme', ['predict']);
    const reader = await addKey(d.store, 'acme', ['read']);
    const admin = await addKey(d.store, 'acme', ['admin']);
    const created = await predict(d.url, 'echo', 'x', predictOnly.auth);
    expect(created.status).toBe(202);
    const id = created.body.id;
    const cases: [string, string, { authorization: string }, string][] = [
      ['GET', `/v1/predictions/${id}`, predictOnly.auth, 'read'],
      ['GET', `/v1/predictions/${id}/events`, predictOnly.auth, 'read'],
      ['POST', `/v1/predictions/${id}/cancel`, reader.auth, 'cancel'],
      ['POST', '/v1/models/echo/predictions', reader.auth, 'predict'],
      ['GET', '/metrics', reader.auth, 'admin'],
    ];
    for (const [method, path, auth, scope] of cases) {
      const res = await request<Problem>(`${d.url}${path}`, { method, headers: auth, ...(path.endsWith('predictions') ? { body: { input: 'x' } } : {}) });
      expect(res.status, path).toBe(403);
      expect(res.body.code).toBe('SPILLWAY_FORBIDDEN');
      expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="spillway", error="insufficient_scope", scope="${scope}"`);
    }
    expect((await request(`${d.url}/v1/predictions/${id}`, { headers: reader.auth })).status).toBe(200);
    expect((await request(`${d.url}/metrics`, { headers: admin.auth })).status).toBe(200);
    // Any valid key may list the models.
    expect((await request(`${d.url}/v1/models`, { headers: admin.auth })).status).toBe(200);
  });

  it('says in /openapi.json which routes take a key and with which scope', async () => {
    const d = await deployment();
    const doc = (await request<{ components: { securitySchemes: Record<string, unknown> }; paths: Record<string, Record<string, { security?: unknown }>> }>(`${d.url}/openapi.json`)).body;
    expect(doc.components.securitySchemes['apiKey']).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/v1/models/{model}/predictions']?.['post']?.security).toEqual([{ apiKey: ['predict'] }]);
    expect(doc.paths['/v1/predictions/{id}/cancel']?.['post']?.security).toEqual([{ apiKey: ['cancel'] }]);
    expect(doc.paths['/v1/models']?.['get']?.security).toEqual([{ apiKey: [] }]);
    expect(doc.paths['/healthz']?.['get']?.security).toBeUndefined();
  });
});

describe.skipIf(inBrokerLegSuite)('tenant metrics', () => {
  it('label the configured tenants by name and every other tenant "other"', async () => {
    const d = await deployment({ tenancy: { tenants: { acme: {} } } });
    const acme = await addKey(d.store, 'acme', ['predict', 'admin']);
    const initech = await addKey(d.store, 'initech', ['predict']);
    expect((await predict(d.url, 'echo', 1, acme.auth)).status).toBe(202);
    expect((await predict(d.url, 'echo', 2, initech.auth)).status).toBe(202);
    expect((await predict(d.url, 'echo', 3, { authorization: 'Bearer nope' })).status).toBe(401);
    const metrics = (await request<string>(`${d.url}/metrics`, { headers: acme.auth })).body;
    expect(metrics).toContain('spillway_tenant_requests_total{tenant="acme",code="202"} 1');
    expect(metrics).toContain('spillway_tenant_requests_total{tenant="other",code="202"} 1');
    expect(metrics).not.toContain('initech');
  });
});

describe.each(testBrokers)('tenant isolation on the $name broker', ({ url }) => {
  it("a tenant sees, follows and cancels only its own predictions: another's id is 404", async () => {
    const d = await deployment({ broker: url });
    const acme = await addKey(d.store, 'acme', ['predict', 'read', 'cancel']);
    const other = await addKey(d.store, 'globex', ['predict', 'read', 'cancel']);
    await eventually(async () => expect((await predict(d.url, 'echo', 'x')).status).toBe(401));

    const mine = await predict(d.url, 'echo', { secret: 1 }, acme.auth);
    expect(mine.status).toBe(202);
    expect(mine.body).toMatchObject({ tenant: 'acme', api_key: acme.id });
    const id = mine.body.id;
    for (const [method, path] of [
      ['GET', `/v1/predictions/${id}`],
      ['GET', `/v1/predictions/${id}/events`],
      ['POST', `/v1/predictions/${id}/cancel`],
    ] as const) {
      const theirs = await request<Problem>(`${d.url}${path}`, { method, headers: other.auth });
      expect(theirs.status, path).toBe(404);
      expect(theirs.body.code).toBe('SPILLWAY_PREDICTION_NOT_FOUND');
    }
    const own = await request<PredictionRecord>(`${d.url}/v1/predictions/${id}`, { headers: acme.auth });
    expect(own.body).toMatchObject({ id, status: 'queued', tenant: 'acme' });
    const canceled = await request<PredictionRecord>(`${d.url}/v1/predictions/${id}/cancel`, { method: 'POST', headers: acme.auth });
    expect(canceled.body).toMatchObject({ id, status: 'canceled', tenant: 'acme' });
  });

  it('scopes Idempotency-Keys to their tenant: the same key from two tenants makes two predictions', async () => {
    const d = await deployment({ broker: url });
    const acme = await addKey(d.store, 'acme', ['predict', 'read']);
    const globex = await addKey(d.store, 'globex', ['predict', 'read']);
    const key = { 'idempotency-key': 'order-1' };
    const a = await predict(d.url, 'echo', 'same', { ...acme.auth, ...key });
    const b = await predict(d.url, 'echo', 'same', { ...globex.auth, ...key });
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(b.body.id).not.toBe(a.body.id);
    const again = await predict(d.url, 'echo', 'same', { ...acme.auth, ...key });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toMatchObject({ id: a.body.id, tenant: 'acme' });
  });
});

describe.skipIf(inBrokerLegSuite)('tenant limits', () => {
  it('limits the request rate per tenant across gateways, with Retry-After and RateLimit headers', async () => {
    const tenancy = { tenants: { acme: { rate_per_s: 0.5, burst: 2 } } };
    const first = await deployment({ tenancy });
    // A second gateway on the same store (and queue): the bucket is shared.
    const second = await deployment({ tenancy, dataDir: first.dataDir });
    const acme = await addKey(first.store, 'acme', ['predict']);
    const globex = await addKey(first.store, 'globex', ['predict']);

    const one = await predict(first.url, 'echo', 1, acme.auth);
    expect(one.status).toBe(202);
    expect(one.headers.get('ratelimit-policy')).toBe('"tenant";q=2;w=4');
    expect(one.headers.get('ratelimit')).toMatch(/^"tenant";r=1;t=\d+$/);
    expect((await predict(second.url, 'echo', 2, acme.auth)).status).toBe(202);
    const third = await predict(first.url, 'echo', 3, acme.auth);
    expect(third.status).toBe(429);
    expect((third.body as unknown as Problem).code).toBe('SPILLWAY_RATE_LIMITED');
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(third.headers.get('ratelimit')).toMatch(/^"tenant";r=0;t=\d+$/);
    // Nothing was queued for the refused one; another tenant is not limited by acme's bucket.
    expect(await first.broker.backlog('spillway.requests.echo', 'workers')).toBe(2);
    expect((await predict(second.url, 'echo', 4, globex.auth)).status).toBe(202);
  });

  it("caps a tenant's open predictions, and frees a place when one ends", async () => {
    // acme's own entry sets another limit: the cap it leaves out is everyone's.
    const d = await deployment({ tenancy: { limits: { max_queued: 1 }, tenants: { acme: { max_waiting: 5 } } } });
    const acme = await addKey(d.store, 'acme', ['predict', 'cancel']);
    const globex = await addKey(d.store, 'globex', ['predict']);
    const first = await predict(d.url, 'echo', 1, acme.auth);
    expect(first.status).toBe(202);
    const refused = await predict(d.url, 'echo', 2, acme.auth);
    expect(refused.status).toBe(429);
    expect((refused.body as unknown as Problem).code).toBe('SPILLWAY_TENANT_QUEUE_FULL');
    expect(refused.headers.get('retry-after')).not.toBeNull();
    expect((await predict(d.url, 'echo', 3, globex.auth)).status).toBe(202);
    await request(`${d.url}/v1/predictions/${first.body.id}/cancel`, { method: 'POST', headers: acme.auth });
    await eventually(async () => expect((await predict(d.url, 'echo', 4, acme.auth)).status).toBe(202));
  });

  it("caps a tenant's held connections: past the cap a submission is answered 202 at once", async () => {
    const d = await deployment({ tenancy: { tenants: { acme: { max_waiting: 1 } } } });
    const acme = await addKey(d.store, 'acme', ['predict']);
    // No worker: the first waits its whole 30 s unless the test ends it.
    const held = predict(d.url, 'echo', 1, { ...acme.auth, prefer: 'wait=30' });
    await eventually(async () => {
      const second = await predict(d.url, 'echo', 2, { ...acme.auth, prefer: 'wait=1' });
      expect(second.status).toBe(202);
      expect(second.headers.get('preference-applied')).toBeNull();
    });
    await d.gateway.close();
    expect((await held).status).toBe(202);
  });

  it("gives a key with limits of its own its own bucket, in place of its tenant's", async () => {
    const d = await deployment({ tenancy: { tenants: { acme: { rate_per_s: 0.01, burst: 5 } } } });
    const batch = await addKey(d.store, 'acme', ['predict'], { limits: { ratePerS: 0.01, burst: 1 } });
    const service = await addKey(d.store, 'acme', ['predict']);
    expect((await predict(d.url, 'echo', 1, batch.auth)).status).toBe(202);
    expect((await predict(d.url, 'echo', 2, batch.auth)).status).toBe(429);
    for (let i = 0; i < 5; i++) expect((await predict(d.url, 'echo', i, service.auth)).status).toBe(202);
    expect((await predict(d.url, 'echo', 6, service.auth)).status).toBe(429);
  });
});
