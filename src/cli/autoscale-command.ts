/**
 * `spillway autoscale`: worker processes on this machine that follow the backlog of one model
 * (docs/autoscaling.md). The signals are the gateway's (ScalingSignals), read here from the
 * broker directly, so no gateway needs to run beside it; the policy is scaling-policy.ts.
 */
import { fileURLToPath } from 'node:url';
import { laneWeightsOf } from '../config/lane-weights.js';
import { prioritizedModels } from '../models/model-config.js';
import { loadConfig } from '../config/load-config.js';
import { ScalingSignals } from '../gateway/scaling/scaling-signals.js';
import { WorkerRegistry } from '../gateway/worker-registry.js';
import { topicsFor } from '../protocol/topics.js';
import { AUTOSCALE_HELP, AutoscaleInputError, parseAutoscaleArgs, type AutoscaleOptions } from './autoscale/autoscale-options.js';
import { decide, initialPolicyState, type PolicyState } from './autoscale/scaling-policy.js';
import { WorkerPool } from './autoscale/worker-pool.js';
import { asRun, programName } from './program-name.js';
import { createLogger, loadRepository, openConfiguredBroker, stopOnSignal } from './services.js';

const mainScript = fileURLToPath(new URL('./main.js', import.meta.url));

export async function runAutoscale(argv: readonly string[]): Promise<number> {
  let o: AutoscaleOptions;
  try {
    o = parseAutoscaleArgs(argv);
  } catch (error) {
    if (!(error instanceof AutoscaleInputError)) throw error;
    process.stderr.write(`spillway autoscale: ${error.message} (see ${programName()} autoscale --help)\n`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(asRun(AUTOSCALE_HELP));
    return 0;
  }
  const { config: file, ...flags } = o.configValues;
  const config = loadConfig({ ...(typeof file === 'string' ? { file } : {}), env: process.env, argv: flags });
  const logger = createLogger(config);
  const repository = loadRepository(config, logger, undefined, { quiet: true });
  const spec = repository.models.get(o.model);
  if (spec === undefined) {
    process.stderr.write(`spillway autoscale: no model named "${o.model}" in ${config.models}\n`);
    return 2;
  }
  const broker = await openConfiguredBroker(config, logger);
  const topics = topicsFor(config.prefix, laneWeightsOf(config), prioritizedModels(repository.models.values()));
  const registry = new WorkerRegistry(config.worker.heartbeat_ms * 3);
  await registry.start(broker, topics.workers, logger);
  const signals = new ScalingSignals({
    broker,
    topics,
    models: () => [o.model],
    configuredSlots: () => spec.config.concurrency,
    workersFor: (model) => registry.workersFor(model),
    logger,
    windowMs: o.windowMs,
  });
  await signals.start();
  const pool = new WorkerPool({
    command: [process.execPath, mainScript, 'worker', '--models', o.model, ...o.configArgs],
    logger,
    retryAfterMs: o.retryMs,
  });
  const settings = { min: o.min, max: o.max, cooldownMs: o.cooldownMs, idleMs: o.idleMs };
  let state: PolicyState = initialPolicyState;
  let ticking = false;
  const tick = async () => {
    // A slow broker must not stack ticks on top of each other.
    if (ticking) return;
    ticking = true;
    try {
      const figures = await signals.figures(o.model, o.targetS);
      const active = figures.backlog + figures.in_flight > 0;
      const decision = decide(settings, pool.size, { desired: figures.desired_workers, active }, state, Date.now());
      state = decision.state;
      if (decision.workers !== pool.size) logger.info({ from: pool.size, to: decision.workers, reason: decision.reason, figures }, `scaling ${o.model} to ${decision.workers} workers`);
      // Every tick, not only on a change: a worker that died is replaced here.
      pool.scaleTo(decision.workers);
    } catch (error) {
      logger.warn({ err: error }, 'could not read the scaling signals; keeping the workers as they are');
    } finally {
      ticking = false;
    }
  };
  const timer = setInterval(() => void tick(), o.tickMs);
  stopOnSignal(logger, config.worker.drain_timeout_ms + 5000, async () => {
    clearInterval(timer);
    await pool.stop();
    await Promise.all([signals.stop(), registry.stop()]);
    await broker.close();
  });
  await tick();
  logger.info({ model: o.model, min: o.min, max: o.max, target_s: o.targetS }, 'Spillway autoscaler started');
  return 0;
}
