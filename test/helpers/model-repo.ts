import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { modelsDir, repoRoot } from './paths.js';

const fixtureModelsDir = join(repoRoot, 'test', 'fixtures', 'models');

/**
 * A copy of the demo model repository for one test, with the sleep model's timing changed and
 * optionally broken models beside the good ones.
 */
export function modelRepo(
  options: {
    sleep?: { per_batch_ms?: number; per_item_ms?: number; concurrency?: number; max_batch_size?: number; dispatch?: 'async' | 'sync'; timeout_ms?: number; max_queue_depth?: number };
    broken?: boolean;
    /** Models from test/fixtures/models to add. */
    fixtures?: readonly string[];
  } = {},
): string {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-models-'));
  for (const name of ['iris', 'digits', 'echo', 'sleep']) cpSync(join(modelsDir, name), join(dir, name), { recursive: true });
  if (options.sleep !== undefined) {
    const file = join(dir, 'sleep', 'model.yaml');
    const config = parse(readFileSync(file, 'utf8')) as Record<string, unknown> & { parameters: Record<string, unknown> };
    const { concurrency, max_batch_size, dispatch, timeout_ms, max_queue_depth, ...parameters } = options.sleep;
    Object.assign(config.parameters, parameters);
    if (dispatch !== undefined) config['dispatch'] = dispatch;
    if (timeout_ms !== undefined) config['timeout_ms'] = timeout_ms;
    if (max_queue_depth !== undefined) config['max_queue_depth'] = max_queue_depth;
    if (concurrency !== undefined) config['concurrency'] = concurrency;
    if (max_batch_size !== undefined) config['max_batch_size'] = max_batch_size;
    writeFileSync(file, stringify(config));
  }
  for (const name of options.fixtures ?? []) cpSync(join(fixtureModelsDir, name), join(dir, name), { recursive: true });
  if (options.broken === true) {
    // A config the schema refuses: the gateway reports it and serves the rest.
    mkdirSync(join(dir, 'misconfigured'));
    writeFileSync(join(dir, 'misconfigured', 'model.yaml'), 'runtime: tensorflow\nfile: model.pb\nmax_batch_size: -1\n');
    // A valid config whose ONNX file is garbage: the worker fails to load it and says so.
    cpSync(join(modelsDir, 'iris'), join(dir, 'corrupt'), { recursive: true });
    writeFileSync(join(dir, 'corrupt', 'model.onnx'), 'this is not an onnx file');
  }
  return dir;
}
