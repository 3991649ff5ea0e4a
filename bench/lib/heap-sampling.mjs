/**
 * Where a process allocates, for a bench's server: preloaded into every thread of it with
 * `--node-args=--import=<this file>` (plain JavaScript, since Spillway runs without tsx), it
 * samples allocations through the inspector for a window of the load and writes one
 * .heapprofile per thread. Unlike `node --heap-prof`, it keeps the objects already collected,
 * so the profile shows everything allocated in the window (what the garbage collector works
 * through), not only what is still alive at the end.
 *
 *   HEAP_SAMPLING_DIR=DIR [HEAP_SAMPLING_START_MS=5000] [HEAP_SAMPLING_MS=8000]
 *
 * Summarise one with `npx tsx bench/profile-summary.ts DIR/<file>.heapprofile`. The names are
 * not SPILLWAY_* because the benches start Spillway without those.
 */
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';

const dir = process.env.HEAP_SAMPLING_DIR;
if (dir === undefined || dir === '') throw new Error('heap-sampling.mjs: set HEAP_SAMPLING_DIR to the folder for the profiles');
const startMs = Number(process.env.HEAP_SAMPLING_START_MS ?? 5000);
const windowMs = Number(process.env.HEAP_SAMPLING_MS ?? 8000);

const session = new Session();
session.connect();
const post = (method, params = {}) => new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));

async function sample() {
  await post('HeapProfiler.enable');
  await post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await new Promise((resolve) => setTimeout(resolve, windowMs).unref());
  const { profile } = await post('HeapProfiler.stopSampling');
  mkdirSync(dir, { recursive: true });
  const thread = isMainThread ? 'main' : `worker-${threadId}`;
  writeFileSync(join(dir, `heap-${process.pid}-${thread}-${windowMs}ms.heapprofile`), JSON.stringify(profile));
}

// Unref'd: a server that stops before the window ends exits as it would without this file.
setTimeout(() => {
  sample().catch((error) => process.stderr.write(`heap-sampling.mjs: ${error}\n`));
}, startMs).unref();
