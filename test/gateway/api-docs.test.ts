import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { request } from '../helpers/http.js';

/** Every src and href of a page. */
function references(html: string): string[] {
  return [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1] ?? '');
}

describe('the API reference page at /docs', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ withWorker: false });
  });
  afterAll(() => d.close());

  it('serves HTML whose every script, style and icon comes from the gateway itself', async () => {
    const page = await request<string>(`${d.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const refs = references(page.body);
    expect(refs.length).toBeGreaterThanOrEqual(5);
    for (const ref of refs) {
      // Relative to the gateway: no scheme, no host, so nothing comes from a CDN.
      expect(ref).toMatch(/^\/docs\/static\//);
      const asset = await fetch(new URL(ref, d.url));
      expect(asset.status, ref).toBe(200);
      expect((await asset.arrayBuffer()).byteLength, ref).toBeGreaterThan(0);
    }
    // With a trailing slash the page refers to its assets relatively; they must still resolve.
    const slashed = await request<string>(`${d.url}/docs/`);
    expect(slashed.status).toBe(200);
    for (const ref of references(slashed.body)) {
      const asset = await fetch(new URL(ref, `${d.url}/docs/`));
      expect(asset.status, ref).toBe(200);
      // Read to the end: an unread 1 MB body keeps its connection busy, and close() waits for it.
      await asset.arrayBuffer();
    }
  });

  it('renders the same OpenAPI document as /openapi.json and asks no online validator', async () => {
    const initializer = await request<string>(`${d.url}/docs/static/swagger-initializer.js`);
    expect(initializer.status).toBe(200);
    expect(initializer.body).toContain('validatorUrl: null');
    expect(initializer.body).toContain("resolveUrl('./json')");
    const viaDocs = await request<{ paths: Record<string, unknown> }>(`${d.url}/docs/json`);
    const openapi = await request<{ openapi: string; paths: Record<string, unknown> }>(`${d.url}/openapi.json`);
    expect(openapi.status).toBe(200);
    expect(openapi.body.openapi).toBe('3.1.0');
    expect(viaDocs.body).toEqual(openapi.body);
    expect(Object.keys(openapi.body.paths)).toContain('/v1/models/{model}/predictions');
    // The page's own routes are not part of the API it documents.
    expect(Object.keys(openapi.body.paths).filter((p) => p.startsWith('/docs'))).toEqual([]);
  });

  it('leaves unknown paths under /docs to the problem+json 404', async () => {
    const res = await request<{ code: string }>(`${d.url}/docs/static/no-such-file.js`);
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('SPILLWAY_ROUTE_NOT_FOUND');
  });
});
