import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import { afterAll, expect, it } from 'vitest';
import { testKafkaCluster } from '../helpers/kafka-script.js';

const cluster = testKafkaCluster(1);
afterAll(async () => cluster.destroy());

it('up on a state folder whose cluster id starts with "-" (formatted by no node) replaces the id and starts', async () => {
  // What `up` used to leave behind one time in 64: StorageTool read `-t -…` as a missing argument.
  const idFile = join(cluster.dir, 'nodes-1', 'cluster.id');
  mkdirSync(join(cluster.dir, 'nodes-1'), { recursive: true });
  writeFileSync(idFile, '-AbCdEfGhIjKlMnOpQrStQ');
  const bootstrap = await cluster.up();
  const id = readFileSync(idFile, 'utf8').trim();
  expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
  const admin = new Admin({ clientId: 'scripts-kafka-test', bootstrapBrokers: bootstrap.split(',') });
  try {
    expect((await admin.metadata({ topics: [] })).id).toBe(id);
  } finally {
    await admin.close();
  }
});
