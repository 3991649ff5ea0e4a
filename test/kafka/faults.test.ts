import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { testKafkaCluster } from '../helpers/kafka-script.js';
import { sendLoad } from '../helpers/load.js';
import { modelRepo } from '../helpers/model-repo.js';
import { expectAlive, expectAllCompleted, expectOnlyUnavailable } from '../helpers/faults.js';
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
    expectOnlyUnavailable(gateway, results, ['SPILLWAY_BROKER_UNAVAILABLE']);
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
