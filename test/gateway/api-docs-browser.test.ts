import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { request } from '../helpers/http.js';

/** Debian's Chromium (`apt-get install -y chromium`); playwright-core brings no browser of its own. */
const chromiumPath = '/usr/bin/chromium';
const hasChromium = existsSync(chromiumPath);
const title = hasChromium
  ? 'the /docs page in headless Chromium'
  : `the /docs page in headless Chromium (SKIPPED: ${chromiumPath} is absent; apt-get install -y chromium)`;
if (!hasChromium) console.warn(`api-docs-browser.test.ts skipped: ${chromiumPath} is absent (apt-get install -y chromium)`);

describe.skipIf(!hasChromium)(title, () => {
  let d: Deployment;
  let browser: Browser;
  beforeAll(async () => {
    d = await startDeployment({ withWorker: false });
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await d?.close();
  });

  it('renders every operation of /openapi.json, loading nothing from anywhere but the gateway', async () => {
    const gateway = new URL(d.url);
    const seen: string[] = [];
    const elsewhere: string[] = [];
    const context = await browser.newContext();
    // Every request the page makes passes here; one for another host is recorded and refused.
    await context.route('**/*', async (route) => {
      const url = new URL(route.request().url());
      seen.push(url.href);
      if (url.host === gateway.host) await route.continue();
      else {
        elsewhere.push(url.href);
        await route.abort();
      }
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));

    await page.goto(`${d.url}/docs`);
    await page.locator('.opblock').first().waitFor({ timeout: 30_000 });

    const openapi = await request<{ paths: Record<string, Record<string, unknown>> }>(`${d.url}/openapi.json`);
    const operations = Object.entries(openapi.body.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const rendered: string[] = [];
    for (const block of await page.locator('.opblock-summary').all()) {
      const method = (await block.locator('.opblock-summary-method').textContent()) ?? '';
      const path = (await block.locator('.opblock-summary-path').getAttribute('data-path')) ?? '';
      rendered.push(`${method.trim()} ${path}`);
    }
    expect(rendered.sort()).toEqual(operations.sort());
    await expect.poll(() => page.locator('.title').first().textContent()).toContain('Spillway Service API');

    expect(elsewhere).toEqual([]);
    expect(seen.some((u) => u.endsWith('/docs/json'))).toBe(true);
    expect(seen.every((u) => new URL(u).hostname === '127.0.0.1')).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });
});
