import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DashboardSnapshot, ModelDashboard } from '../../src/gateway/dashboard/dashboard-schema.js';
import type { ScalingFigures } from '../../src/gateway/schemas.js';
import type { WorkerSighting } from '../../src/gateway/worker-registry.js';
import type { BenchReport } from '../../src/loadgen/report.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { addKey } from '../helpers/api-keys.js';
import { startDeployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { repoRoot } from '../helpers/paths.js';
import { runSpillway, spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';
import { until } from '../helpers/until.js';

/** Debian's Chromium (`apt-get install -y chromium`); playwright-core brings no browser of its own. */
const chromiumPath = '/usr/bin/chromium';
const hasChromium = existsSync(chromiumPath);
const title = hasChromium
  ? 'the /dashboard page in headless Chromium'
  : `the /dashboard page in headless Chromium (SKIPPED: ${chromiumPath} is absent; apt-get install -y chromium)`;
if (!hasChromium) console.warn(`dashboard-browser.test.ts skipped: ${chromiumPath} is absent (apt-get install -y chromium)`);

/** SPILLWAY_DASHBOARD_SCREENSHOT=docs/dashboard.png: also save the picture the docs show. */
const docsScreenshot = process.env['SPILLWAY_DASHBOARD_SCREENSHOT'];

/** What the page holds (window.spillwayDashboard): the last snapshot and each model's series. */
interface PageState {
  readonly polls: number;
  readonly last: DashboardSnapshot | null;
  readonly series: Record<string, { t: number[]; backlog: number[]; in_flight: number[] }>;
}

/** The page's globals these tests read (the test compiles without the DOM's types). */
interface PageGlobals {
  readonly spillwayDashboard: PageState;
  readonly document: { querySelectorAll(selector: string): Iterable<{ remove(): void }> };
  readonly sessionStorage: { getItem(key: string): string | null };
}
const inPage = <T>(page: Page, read: (g: PageGlobals) => T) => page.evaluate<T>(`(${read.toString()})(globalThis)`);
const pageState = (page: Page) => inPage(page, (g) => g.spillwayDashboard);
const shownModel = (state: PageState, model: string): ModelDashboard | undefined => state.last?.models.find((m) => m.model === model);
const figure = (page: Page, model: string, name: string) => page.locator(`section[data-model="${model}"] [data-figure="${name}"]`).textContent();

/** A context in which every request for another host than the gateway is recorded and refused. */
async function offlineContext(browser: Browser, gateway: string, elsewhere: string[]): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const host = new URL(gateway).host;
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    if (url.host === host) await route.continue();
    else {
      elsewhere.push(url.href);
      await route.abort();
    }
  });
  return context;
}

describe.skipIf(!hasChromium)(title, () => {
  let browser: Browser;
  let serve: SpillwayProcess | undefined;
  const shots = mkdtempSync(join(tmpdir(), 'spillway-dashboard-shots-'));

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await serve?.kill('SIGTERM');
  });

  it('follows a burst from spillway bench: the backlog rises above 0 and falls back to 0, and the figures match the API', async () => {
    // One slot of 200 ms: 5 requests/s, so a spike of 50/s for a second leaves some 10 s of backlog,
    // many of the page's one-second polls.
    const models = modelRepo({ sleep: { per_batch_ms: 200, concurrency: 1 }, fixtures: ['flaky'] });
    serve = await spawnSpillway(['serve', '--port', '0', '--data', mkdtempSync(join(tmpdir(), 'spillway-dashboard-data-')), '--models', models]);
    const url = serve.url;
    const elsewhere: string[] = [];
    const context = await offlineContext(browser, url, elsewhere);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    await page.goto(`${url}/dashboard`);

    // At rest, once the worker has reported: the page shows what the API says.
    const rest = await until('the page to show the worker', async () => {
      const state = await pageState(page);
      const sleep = shownModel(state, 'sleep');
      return sleep !== undefined && sleep.workers.seen === 1 ? state : undefined;
    }, 60_000);
    const listed = await request<{ models: { name: string; kind: string; concurrency?: number; queue_depth?: number; workers: WorkerSighting[] }[] }>(`${url}/v1/models`);
    const listedModels = listed.body.models.filter((m) => m.kind === 'model');
    expect(rest.last!.models.map((m) => m.model).sort()).toEqual(listedModels.map((m) => m.name).sort());
    const listedSleep = listedModels.find((m) => m.name === 'sleep')!;
    expect(listedSleep.concurrency).toBe(1);
    expect(listedSleep.queue_depth).toBe(0);
    expect(shownModel(rest, 'sleep')).toMatchObject({ backlog: 0, in_flight: 0, completed: 0, workers: { seen: 1, slots: 1, slots_per_worker: 1 } });
    expect(listedSleep.workers.map((w) => w.worker)).toEqual(shownModel(rest, 'sleep')!.workers.list.map((w) => w.worker));
    expect(await figure(page, 'sleep', 'slots')).toBe('1');

    const out = join(mkdtempSync(join(tmpdir(), 'spillway-dashboard-bench-')), 'report.json');
    const benchRun = runSpillway([
      'bench', '--target', url, '--model', 'sleep', '--profile', 'burst', '--rate', '2', '--spike-rate', '50', '--spike-at', '1', '--spike-for', '1',
      '--duration', '3', '--seed', '14', '--drain-timeout', '240', '--quiet', '--no-html', '--out', out,
    ]);
    // Observed on the page, from the values its backlog chart draws.
    const peak = await until('the backlog chart to rise above 0', async () => {
      const backlog = (await pageState(page)).series['sleep']?.backlog ?? [];
      const max = Math.max(0, ...backlog);
      return max > 0 ? max : undefined;
    }, 120_000);
    expect(peak).toBeGreaterThan(0);
    const bench = await benchRun;
    expect(bench.code, bench.output).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;
    expect(report).toMatchObject({ rejected: 0, errored: 0, lost: 0 });
    expect(report.completed).toBe(report.sent);

    const drained = await until('the backlog chart to fall back to 0 with every result counted', async () => {
      const state = await pageState(page);
      const sleep = shownModel(state, 'sleep');
      return sleep !== undefined && sleep.backlog === 0 && sleep.in_flight === 0 && sleep.completed === report.completed ? state : undefined;
    }, 240_000);
    const series = drained.series['sleep']!;
    // Rose, then fell back: the last point is 0, and a point above 0 came before it.
    expect(series.backlog.at(-1)).toBe(0);
    expect(series.backlog.slice(0, -1).some((b) => b > 0)).toBe(true);
    const sleep = shownModel(drained, 'sleep')!;
    expect(sleep.by_status).toEqual({ succeeded: report.completed });
    // Latency split in two, over the burst's results: the spike's requests waited behind each other.
    expect(sleep.latency.queue_ms.count).toBeGreaterThan(0);
    expect(sleep.latency.queue_ms.count).toBeLessThanOrEqual(report.completed);
    expect(sleep.latency.queue_ms.p99!).toBeGreaterThan(sleep.latency.queue_ms.p50!);
    expect(sleep.latency.inference_ms.p50!).toBeGreaterThan(0);

    // The same moment from the API: the queue is empty there too, and the workers are the same.
    const scaling = await request<ScalingFigures>(`${url}/v1/models/sleep/scaling`);
    expect(scaling.body).toMatchObject({ backlog: 0, in_flight: 0, workers_seen: sleep.workers.seen, slots_per_worker: sleep.workers.slots_per_worker });
    const after = await request<{ queue_depth: number; concurrency: number }>(`${url}/v1/models/sleep`);
    expect(after.body).toMatchObject({ queue_depth: 0, concurrency: sleep.workers.slots });
    // What the page shows as text is what it holds.
    await until('the page text to show the drained queue', async () =>
      (await figure(page, 'sleep', 'backlog')) === '0' && (await figure(page, 'sleep', 'completed')) === String(report.completed) ? true : undefined,
    );

    // A request that fails every attempt: listed as a failure and a dead letter, each a link to its record.
    const failing = await predict(url, 'flaky', { key: 'always', fail_times: 100, retryable: true });
    const id = failing.body.id;
    await until('the dead letter and the failure on the page', async () =>
      (await page.locator(`section[data-model="flaky"] a[data-id="${id}"]`).count()) === 2 ? true : undefined,
    30_000);
    for (const link of await page.locator(`section[data-model="flaky"] a[data-id="${id}"]`).all()) {
      expect(await link.getAttribute('href')).toBe(`/v1/predictions/${id}`);
    }
    expect(await figure(page, 'flaky', 'dead_letters')).toBe('1');
    expect((await request<PredictionRecord>(`${url}/v1/predictions/${id}`)).body.status).toBe('failed');

    await page.screenshot({ path: join(shots, 'dashboard.png'), fullPage: true });
    expect(existsSync(join(shots, 'dashboard.png'))).toBe(true);
    if (docsScreenshot !== undefined) {
      const file = resolve(repoRoot, docsScreenshot);
      mkdirSync(dirname(file), { recursive: true });
      // The header and the model the burst went to, at a width that reads in the docs.
      await inPage(page, (g) => {
        for (const section of g.document.querySelectorAll('section.model:not([data-model="sleep"])')) section.remove();
      });
      await page.screenshot({ path: file, fullPage: true });
    }

    expect(elsewhere).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  }, 600_000);

  it('asks for a key when the gateway wants one, and goes live with an admin key, not before', async () => {
    const d = await startDeployment({ withWorker: false, tenancy: { auth: 'keys' } });
    try {
      const reader = await addKey(d.store, 'acme', ['predict', 'read']);
      const ops = await addKey(d.store, 'ops', ['admin']);
      const elsewhere: string[] = [];
      const context = await offlineContext(browser, d.url, elsewhere);
      const page = await context.newPage();
      await page.goto(`${d.url}/dashboard`);
      await page.locator('form#auth').waitFor({ state: 'visible', timeout: 30_000 });
      expect(await page.locator('#status').getAttribute('data-state')).toBe('auth');

      await page.fill('#key', reader.auth.authorization.replace('Bearer ', ''));
      await page.click('form#auth button');
      await until('the page to refuse the tenant key', async () => ((await page.locator('#status').textContent()) === 'this key lacks the admin scope' ? true : undefined), 30_000);
      expect(await page.locator('form#auth').isVisible()).toBe(true);

      await page.fill('#key', ops.auth.authorization.replace('Bearer ', ''));
      await page.click('form#auth button');
      await until('the page to go live', async () => ((await pageState(page)).polls > 0 ? true : undefined), 30_000);
      expect(await page.locator('#status').getAttribute('data-state')).toBe('live');
      // The key stays in the tab, for the next load.
      expect(await inPage(page, (g) => g.sessionStorage.getItem('spillway.dashboard.key'))).toBe(ops.auth.authorization.replace('Bearer ', ''));
      expect(elsewhere).toEqual([]);
      await context.close();
    } finally {
      await d.close();
    }
  }, 120_000);
});
