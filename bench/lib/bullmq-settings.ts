/**
 * What the BullMQ peer's two processes (bullmq-echo-server.ts, bullmq-echo-worker.ts) must agree
 * on, and how they read it. Both are started as `node --import tsx <file> <port> <redis-url>
 * <prefix> [concurrency]`, or with BULLMQ_REDIS_URL / BULLMQ_PREFIX / BULLMQ_CONCURRENCY set.
 */
import type { KeepJobs } from 'bullmq';

export const queueName = 'echo';

/**
 * Spillway's echo model allows 3 attempts (models/echo/model.yaml, max_attempts); BullMQ's
 * default is 1. Echo never fails, so this changes no figure, only keeps the semantics alike.
 */
export const attempts = 3;

/**
 * BullMQ keeps every finished job unless told otherwise; a real deployment caps that, as
 * BullMQ's guide on auto-removal advises (a handful of completed jobs, more failed ones), so
 * that Redis memory stays bounded however long it runs. The result itself reaches the waiting
 * request through the `completed` event, which carries the return value, not through the kept job.
 */
export const removeOnComplete: KeepJobs = { count: 1000 };
export const removeOnFail: KeepJobs = { count: 5000 };

export interface PeerArgs {
  readonly port: number;
  readonly redisUrl: string;
  /** BullMQ's key prefix (its default is `bull`): unique per measurement, so runs never meet. */
  readonly prefix: string;
  readonly concurrency: number;
}

export function peerArgs(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): PeerArgs {
  const [port = '0', redisUrl = env['BULLMQ_REDIS_URL'] ?? '', prefix = env['BULLMQ_PREFIX'] ?? '', concurrency = env['BULLMQ_CONCURRENCY'] ?? '64'] = argv;
  if (!redisUrl.startsWith('redis://')) throw new Error(`expected a redis:// URL as the second argument or BULLMQ_REDIS_URL, got "${redisUrl}"`);
  if (prefix === '') throw new Error('expected a key prefix as the third argument or BULLMQ_PREFIX');
  const n = Number(concurrency);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer concurrency, got "${concurrency}"`);
  return { port: Number(port), redisUrl, prefix, concurrency: n };
}

/** Closes everything on SIGTERM or SIGINT, then exits; exit code 1 if closing failed. */
export function closeOnSignal(name: string, close: () => Promise<unknown>): void {
  const stop = (signal: NodeJS.Signals) => {
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`${name}: close failed on ${signal}: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
