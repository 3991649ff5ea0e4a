import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { pino } from 'pino';
import type { Broker } from '../../src/brokers/broker.js';
import { describeError } from '../../src/protocol/errors.js';
import { topicsFor } from '../../src/protocol/topics.js';
import { tapGroup } from '../../src/protocol/topics.js';
import { DuckDbTap } from '../../src/taps/duckdb-tap.js';
import type { QueryRow } from '../../src/taps/analytics-db.js';

/** Helpers the tap tests share: a tap on a deployment, and waiting on conditions, never on time. */

export const tapModels = ['echo', 'flaky'] as const;

export function tempDbPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'spillway-tap-')), 'analytics.duckdb');
}

export function startTestTap(o: { broker: Broker; prefix: string; dbPath: string; name?: string; models?: readonly string[] }): Promise<DuckDbTap> {
  return DuckDbTap.start({
    broker: o.broker,
    prefix: o.prefix,
    models: o.models ?? tapModels,
    name: o.name ?? 'analytics',
    dbPath: o.dbPath,
    metadataFields: ['tenant'],
    batchSize: 64,
    logger: pino({ level: process.env['SPILLWAY_TEST_LOG'] ?? 'silent' }),
  });
}

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs` saying what it waited for. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${describeError(last)}`}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** True once the tap's group has acked everything on the response stream and the request topics. */
export async function caughtUp(broker: Broker, prefix: string, name = 'analytics'): Promise<boolean> {
  const topics = topicsFor(prefix);
  const group = tapGroup(name);
  for (const topic of [topics.responses, ...tapModels.map((m) => topics.requests(m))]) {
    if ((await broker.backlog(topic, group)) > 0) return false;
  }
  return true;
}

/** Reads a tap file no process has open any more (a tap process that has exited). */
export async function readClosedDb(path: string, sql: string): Promise<QueryRow[]> {
  const instance = await DuckDBInstance.create(path);
  const connection = await instance.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJson();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
