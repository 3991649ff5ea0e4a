import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { request, waitForFinal } from '../helpers/http.js';
import { testKafkaCluster } from '../helpers/kafka-script.js';
import { accepted, sendLoad, type LoadResult } from '../helpers/load.js';
import { modelRepo } from '../helpers/model-repo.js';
import { spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const running: SpillwayProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
});

function deployment(bootstrap: string, extra: string[] = []) {
  const prefix = `f${Math.random().toString(36).slice(2, 10)}`;
  const common = [
    '--broker', `kafka://${bootstrap}`,
    '--prefix', prefix,
    '--data', mkdtempSync(join(tmpdir(), 'spillway-kfaults-')),
    '--models', modelRepo({ sleep: { per_batch_ms: 10, per_item_ms: 1, max_batch_size: 16, concurrency: 2 } }),
    '--lease-ms', '3000',
    ...extra,
  ];
  const start = async (args: string[]) => {
    const p = await spawnSpillway(args, { SPILLWAY_WORKER_HEARTBEAT_MS: '500' });
    running.push(p);
    return p;
  };
  return {
    prefix,
    gateway: () => start(['gateway', ...common, '--port', '0']),
    worker: () => start(['worker', ...common]),
  };
}

/** The process's last lines of output (each cut to 600 characters), for a failure message. */
function lastOutput(p: SpillwayProcess, lines = 30): string {
  const shown = p.logs.slice(-lines).map((line) => (line.length > 600 ? `${line.slice(0, 600)}…` : line));
  return shown.join('\n') || '(no output)';
}

/**
 * Fails, with the process's last output, unless it is still running and (a gateway) answers /healthz. A fault
 * may make a gateway answer 503; it must never make it exit.
 */
async function expectAlive(p: SpillwayProcess, what: string): Promise<void> {
  const exited = () => p.child.exitCode !== null || p.child.signalCode !== null;
  const dead = () => `${what} exited (code ${p.child.exitCode}, signal ${p.child.signalCode}); its last output:\n${lastOutput(p)}`;
  if (exited()) throw new Error(dead());
  if (p.url === '') return; // a worker serves no HTTP
  const health = await request(`${p.url}/healthz`).catch((error: unknown) => error as Error);
  // A refused connection usually means the process is on its way out: give its exit a moment to show.
  if (health instanceof Error && !exited()) await Promise.race([once(p.child, 'exit'), sleep(1000)]);
  if (exited()) throw new Error(dead());
  if (health instanceof Error || health.status !== 200) {
    const answer = health instanceof Error ? describeFetchError(health) : `status ${health.status}`;
    throw new Error(`${what} does not answer /healthz (${answer}); its last output:\n${lastOutput(p)}`);
  }
}

/** A fetch failure's own words and its cause's code (ECONNREFUSED, ...). */
function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return [String(error), cause?.code ?? cause?.message].filter(Boolean).join(': ');
}

/**
 * While the broker is down a live gateway still answers: every request that was not accepted got
 * 503 SPILLWAY_BROKER_UNAVAILABLE. A request with no answer at all (connection refused or reset)
 * means the gateway died or stopped listening, which no broker outage may cause.
 */
function expectOnlyBrokerUnavailable(gateway: SpillwayProcess, results: readonly LoadResult[]): void {
  const wrong = results.filter((r) => !accepted(r) && !(r.answer?.status === 503 && (r.answer.body as { code?: string }).code === 'SPILLWAY_BROKER_UNAVAILABLE'));
  if (wrong.length === 0) return;
  const shown = wrong
    .slice(0, 5)
    .map((r) => `#${r.index}: ${r.answer === undefined ? `no answer (${describeFetchError(r.error)})` : `${r.answer.status} ${JSON.stringify(r.answer.body)}`}`);
  throw new Error(
    `${wrong.length} requests were refused other than with 503 SPILLWAY_BROKER_UNAVAILABLE, e.g.\n${shown.join('\n')}\n` +
      `gateway exit code ${gateway.child.exitCode}, signal ${gateway.child.signalCode}; its last output:\n${lastOutput(gateway)}`,
  );
}

/** Every accepted request reaches one final, successful outcome, which polls keep returning. */
async function expectAllCompleted(gateway: SpillwayProcess, results: readonly LoadResult[]) {
  const url = gateway.url;
  const ids = results.filter(accepted).map((r) => r.answer!.body.id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids) {
    const final = await waitForFinal(url, id, 90_000).catch(async (error: unknown) => {
      // A poll that cannot connect is about the gateway, not the prediction: say so.
      await expectAlive(gateway, 'the gateway');
      throw error;
    });
    expect(final.status).toBe('succeeded');
    expect((await request<PredictionRecord>(`${url}/v1/predictions/${id}`)).body).toEqual(final);
  }
  return ids.length;
}

describe('Kafka, one broker (scripts/kafka up)', () => {
  const cluster = testKafkaCluster(1);
  afterAll(async () => cluster.destroy());

  it('a worker SIGKILLed mid-batch during 1,000 requests: every accepted request completes once', async () => {
    const bootstrap = await cluster.up();
    const d = deployment(bootstrap);
    const gateway = await d.gateway();
    const first = await d.worker();
    let killed: Promise<unknown> | undefined;
    const results = await sendLoad({
      url: () => gateway.url,
      model: 'sleep',
      count: 1000,
      concurrency: 100,
      input: (i) => ({ i }),
      headers: { prefer: 'wait=120' },
      onProgress: (done) => {
        if (done === 200) killed = first.kill('SIGKILL').then(() => d.worker());
      },
    });
    await killed;
    expect(results.every((r) => r.answer?.status === 200)).toBe(true);
    // Each client got its own input back, exactly once.
    expect(results.map((r) => (r.answer!.body.output as { input: { i: number } }).input.i)).toEqual(results.map((r) => r.index));
    expect(await expectAllCompleted(gateway, results.slice(0, 100))).toBe(100);
    await expectAlive(gateway, 'the gateway');
  });

  it('the broker restarted during a run: no accepted request is lost', async () => {
    const bootstrap = await cluster.up();
    const d = deployment(bootstrap);
    const gateway = await d.gateway();
    const worker = await d.worker();
    const load = sendLoad({ url: () => gateway.url, model: 'sleep', count: 400, concurrency: 4, intervalMs: 40, input: (i) => ({ i }) });
    await sleep(2000);
    await cluster.run(['down']);
    await sleep(2000);
    await cluster.up();
    const results = await load;
    await expectAlive(gateway, 'the gateway');
    expectOnlyBrokerUnavailable(gateway, results);
    const completed = await expectAllCompleted(gateway, results);
    expect(completed).toBeGreaterThan(100);
    await expectAlive(gateway, 'the gateway');
    await expectAlive(worker, 'the worker');
  });
});

describe('Kafka, three brokers (scripts/kafka up --nodes 3)', () => {
  const cluster = testKafkaCluster(3);
  afterAll(async () => cluster.destroy());

  it('the leader of a request partition killed under load: no accepted request is lost', async () => {
    const bootstrap = await cluster.up();
    const d = deployment(bootstrap, ['--kafka-replication', '3', '--kafka-partitions', '3']);
    const gateway = await d.gateway();
    await d.worker();
    const load = sendLoad({ url: () => gateway.url, model: 'sleep', count: 300, concurrency: 4, intervalMs: 40, input: (i) => ({ i }) });
    await sleep(2500);
    const admin = new Admin({ clientId: 'fault-test', bootstrapBrokers: bootstrap.split(',') });
    const topic = `${d.prefix}.requests.sleep`;
    const metadata = await admin.metadata({ topics: [topic] });
    const leader = metadata.topics.get(topic)?.partitions[0]?.leader;
    await admin.close();
    expect(leader).toBeGreaterThan(0);
    await cluster.run(['stop-node', String(leader), '--kill']);
    const results = await load;
    const completed = await expectAllCompleted(gateway, results);
    expect(completed).toBeGreaterThan(200);
    await expectAlive(gateway, 'the gateway');
  });
});
