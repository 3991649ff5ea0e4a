import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageSchemas } from '../../src/protocol/message-schemas.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { request } from '../helpers/http.js';
import { repoRoot } from '../helpers/paths.js';

interface Listed {
  readonly name: string;
  readonly topic: string;
  readonly id: string;
  readonly url: string;
}

describe('GET /v1/schemas', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await startDeployment({ withWorker: false });
  });
  afterAll(() => d.close());

  it('lists every message schema with its versioned id and where to fetch it', async () => {
    const res = await request<{ schemas: Listed[] }>(`${d.url}/v1/schemas`);
    expect(res.status).toBe(200);
    expect(res.body.schemas.map((s) => s.name)).toEqual(messageSchemas.map((s) => s.name));
    for (const s of res.body.schemas) {
      expect(s.id).toBe(`https://spillway.dev/schemas/v1/${s.name}.json`);
      expect(s.url).toBe(`/v1/schemas/${s.name}`);
    }
    expect(res.body.schemas.find((s) => s.name === 'response')?.topic).toBe('<prefix>.responses');
  });

  it('serves each schema as application/schema+json, the same text as docs/schemas/v1', async () => {
    const { body } = await request<{ schemas: Listed[] }>(`${d.url}/v1/schemas`);
    for (const s of body.schemas) {
      const res = await fetch(`${d.url}${s.url}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/schema\+json/);
      expect(await res.text()).toBe(readFileSync(join(repoRoot, 'docs', 'schemas', 'v1', `${s.name}.json`), 'utf8'));
    }
  });

  it('answers an unknown name with a 404 problem of its own code', async () => {
    const res = await fetch(`${d.url}/v1/schemas/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 404, code: 'SPILLWAY_SCHEMA_NOT_FOUND' });
  });

  it('is in the OpenAPI document, with its problem answers', async () => {
    const { body } = await request<{ paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, unknown> }> }>> }>(`${d.url}/openapi.json`);
    expect(body.paths['/v1/schemas']?.['get']?.responses['200']).toBeDefined();
    const one = body.paths['/v1/schemas/{name}']?.['get'];
    expect(Object.keys(one?.responses['200']?.content ?? {})).toEqual(['application/schema+json']);
    expect(JSON.stringify(one?.responses['404'])).toContain('SPILLWAY_SCHEMA_NOT_FOUND');
  });
});
