import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { laneWeightsOf } from '../config/lane-weights.js';
import { prioritizedModels } from '../models/model-config.js';
import type { SpillwayConfig } from '../config/schema.js';
import { tapGroup } from '../protocol/topics.js';
import { DuckDbTap } from '../taps/duckdb-tap.js';
import { createLogger, loadRepository, openConfiguredBroker, stopOnSignal } from './services.js';

/** Where the tap's DuckDB file lives: `tap.db` if set, else beside the embedded files. */
export function tapDbPath(config: SpillwayConfig): string {
  return config.tap.db === undefined ? join(config.data, 'analytics.duckdb') : resolve(config.tap.db);
}

/**
 * `spillway tap`: the analytics subscriber, in a process of its own so that a slow or stopped
 * tap only falls behind in its own consumer group, and serving never waits for it.
 */
export async function tap(config: SpillwayConfig): Promise<void> {
  const logger = createLogger(config);
  lowerPriority(config.tap.nice, logger);
  // Every model of the repository, loadable or not: a request for a model that fails to load
  // still has a size worth keeping, and its failed record arrives on the response stream.
  const repository = loadRepository(config, logger, undefined, { quiet: true });
  const models = [...repository.models.keys(), ...repository.failures.map((f) => f.name)];
  const broker = await openConfiguredBroker(config, logger);
  const dbPath = tapDbPath(config);
  const t = await DuckDbTap.start({
    broker,
    prefix: config.prefix,
    laneWeights: laneWeightsOf(config),
    prioritized: prioritizedModels(repository.models.values()),
    models,
    name: config.tap.name,
    dbPath,
    metadataFields: config.tap.metadata_fields,
    batchSize: config.tap.batch_size,
    lingerMs: config.tap.linger_ms,
    logger,
  }).catch(async (error: unknown) => {
    await broker.close();
    throw error;
  });
  stopOnSignal(logger, config.worker.drain_timeout_ms, async () => {
    await t.stop();
    await broker.close();
  });
  logger.info({ broker: config.broker, group: tapGroup(config.tap.name), db: dbPath, models }, `Spillway tap ${config.tap.name} writing ${dbPath}`);
}

/**
 * A tap may lag but must not slow serving: on a machine short of CPU, the kernel then gives the
 * gateway and workers the CPU first, and the tap catches up when load falls. Raising priority
 * back is not allowed without privileges, so a nice lower than the current one is kept as is.
 */
function lowerPriority(nice: number, logger: Logger): void {
  try {
    // On Linux a nice value belongs to one thread, and threads started later take their
    // starter's: so every thread there is now (V8's, libuv's) is lowered, not only this one.
    for (const thread of threadIds()) if (getPriority(thread) < nice) setPriority(thread, nice);
  } catch (error) {
    logger.warn({ err: error, nice }, 'could not lower the tap process priority; it competes with serving for CPU');
  }
  if (nice === maxNice) runWhenIdle(logger);
}

const maxNice = 19;

/** This process's threads (Linux), or the process itself where /proc does not list them. */
function threadIds(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number);
  } catch {
    return [0];
  }
}

/**
 * At the lowest priority the tap also asks Linux for SCHED_IDLE: nice 19 still takes a small share
 * of a busy CPU, an idle-class process takes none while anything else wants it. Node has no call
 * for it, so util-linux's chrt sets it for every thread the process has; threads started later
 * (DuckDB's) inherit it. Where chrt is missing, nice alone stays.
 */
function runWhenIdle(logger: Logger): void {
  if (process.platform !== 'linux') return;
  const result = spawnSync('chrt', ['--idle', '--all-tasks', '--pid', '0', String(process.pid)], { stdio: 'ignore', timeout: 5000 });
  if (result.status !== 0) logger.debug({ err: result.error, status: result.status }, 'could not set SCHED_IDLE for the tap (chrt); it keeps nice 19');
}
