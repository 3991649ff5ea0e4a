import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import { afterAll, expect, it } from 'vitest';
import { kafkaScript, testKafkaCluster, type TestKafkaCluster } from '../helpers/kafka-script.js';

// What `up` used to leave behind one time in 64: StorageTool read `-t -…` as a missing argument.
const dashId = '-AbCdEfGhIjKlMnOpQrStQ';
const clusters: TestKafkaCluster[] = [];
afterAll(async () => Promise.all(clusters.map((c) => c.destroy())));

function clusterWithId(nodes: number, id: string) {
  const cluster = testKafkaCluster(nodes);
  clusters.push(cluster);
  const state = join(cluster.dir, `nodes-${nodes}`);
  mkdirSync(state, { recursive: true });
  writeFileSync(join(state, 'cluster.id'), id);
  return { cluster, state, idNow: () => readFileSync(join(state, 'cluster.id'), 'utf8').trim() };
}

async function metadataClusterId(bootstrap: string): Promise<string> {
  const admin = new Admin({ clientId: 'scripts-kafka-test', bootstrapBrokers: bootstrap.split(',') });
  try {
    return (await admin.metadata({ topics: [] })).id;
  } finally {
    await admin.close();
  }
}

it('up on a state folder whose cluster id starts with "-" (formatted by no node) replaces the id and starts', async () => {
  const { cluster, idNow } = clusterWithId(1, dashId);
  const bootstrap = await cluster.up();
  expect(idNow()).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
  expect(await metadataClusterId(bootstrap)).toBe(idNow());
});

it('a node already formatted with such an id keeps it, and the other nodes are formatted with it too', async () => {
  const { cluster, state, idNow } = clusterWithId(2, dashId);
  // Node 1 formatted with the id, node 2 not yet: the id cannot change, so StorageTool must read it.
  const node1 = join(state, 'node-1');
  mkdirSync(node1, { recursive: true });
  writeFileSync(join(node1, 'format.properties'), [
    'process.roles=broker,controller', 'node.id=1', 'controller.quorum.voters=1@127.0.0.1:1,2@127.0.0.1:2',
    'listeners=PLAINTEXT://127.0.0.1:3,CONTROLLER://127.0.0.1:1', 'controller.listener.names=CONTROLLER',
    `log.dirs=${join(node1, 'data')}`, '',
  ].join('\n'));
  await kafkaScript(['run-class', 'kafka.tools.StorageTool', 'format', `--cluster-id=${dashId}`, '-c', join(node1, 'format.properties')], cluster.env);
  const bootstrap = await cluster.up();
  expect(idNow()).toBe(dashId);
  expect(readFileSync(join(state, 'node-2', 'data', 'meta.properties'), 'utf8')).toContain(`cluster.id=${dashId}`);
  expect(await metadataClusterId(bootstrap)).toBe(dashId);
});
