// @ts-check
import { readdirSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';

/**
 * The dependency rule of src/, as data: each layer (a folder of src/, with the folders below it
 * that are not layers of their own) and the layers it may import. `npm run lint` enforces it
 * (eslint.config.js) and test/docs/layers.test.ts checks that docs/architecture.md shows the
 * same table, so the rule, the linter and the docs cannot drift apart.
 *
 * Naming a layer allows its own files only, not its sub-layers: `brokers` is the broker
 * interface and its helpers, `brokers/kafka` an adapter. Adapters are reached through the
 * factories in their interface's folder (open-broker, open-store, load-runtime) with a lazy
 * `import()`, which this rule leaves alone so that an unused adapter never loads.
 *
 * @type {Readonly<Record<string, readonly string[]>>}
 */
export const layers = {
  protocol: [],
  sqlite: [],
  redis: ['protocol'],
  config: ['protocol'],
  http: ['protocol'],
  observability: ['protocol'],
  pipelines: ['protocol'],
  models: ['config', 'pipelines', 'protocol'],
  brokers: ['protocol', 'redis', 'sqlite'],
  'brokers/embedded': ['brokers', 'protocol', 'sqlite'],
  'brokers/kafka': ['brokers', 'protocol'],
  'brokers/redis': ['brokers', 'protocol', 'redis'],
  stores: ['brokers', 'protocol', 'redis', 'sqlite'],
  'stores/sqlite': ['stores', 'protocol', 'sqlite'],
  'stores/redis': ['stores', 'protocol', 'redis'],
  runtimes: ['models', 'protocol'],
  'runtimes/handler': ['runtimes', 'models', 'protocol'],
  'runtimes/onnx': ['runtimes', 'models', 'protocol'],
  callbacks: ['brokers', 'config', 'observability', 'protocol', 'stores'],
  dlq: ['brokers', 'protocol'],
  worker: ['brokers', 'http', 'models', 'observability', 'pipelines', 'protocol', 'runtimes'],
  gateway: ['brokers', 'callbacks', 'http', 'models', 'observability', 'pipelines', 'plan', 'protocol', 'stores'],
  taps: ['brokers', 'protocol'],
  loadgen: [],
  plan: [],
  cli: ['brokers', 'callbacks', 'config', 'dlq', 'gateway', 'loadgen', 'models', 'observability', 'plan', 'protocol', 'stores', 'taps', 'worker'],
  '.': ['brokers', 'protocol', 'runtimes', 'runtimes/handler', 'stores'],
};

/**
 * The layer a folder of src/ (`.` for src itself) belongs to: itself if it is a layer, else its
 * parent's (gateway/routes is the gateway), unless that parent has sub-layers: there a new
 * folder is most likely an adapter, and it must say where it stands. A folder in no layer is an
 * error, so a new folder cannot slip past the rule.
 *
 * @param {string} folder
 * @returns {string}
 */
export function layerOf(folder) {
  if (Object.hasOwn(layers, folder)) return folder;
  const parent = posix.dirname(folder);
  if (parent !== '.') {
    const layer = layerOf(parent);
    if (!Object.keys(layers).some((other) => other.startsWith(`${layer}/`))) return layer;
  }
  throw new Error(`src/${folder} belongs to no layer: add it to layers.js and docs/architecture.md`);
}

/**
 * ESLint config blocks, one for each folder of src/: `no-restricted-imports` of every folder
 * outside its layer's allowance. The rule matches the import as written, so the patterns are
 * the exact relative paths from that folder (`../worker/…`, `./kafka/…`).
 *
 * @param {string} srcDir absolute path of src/
 * @returns {import('eslint').Linter.Config[]}
 */
export function layerRules(srcDir) {
  const folders = [
    '.',
    ...readdirSync(srcDir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => relative(srcDir, join(entry.parentPath, entry.name)).split(sep).join('/')),
  ];
  return folders.map((from) => {
    const layer = layerOf(from);
    const allowed = [layer, ...(layers[layer] ?? [])];
    const patterns = folders
      .filter((to) => !allowed.includes(layerOf(to)))
      .map((to) => {
        const path = posix.relative(from, to);
        return { regex: `^${escapeRegex(path.startsWith('..') ? path : `./${path}`)}/[^/]+$`, message: `${describe(layer)} may import ${describeAllowed(layer)} (layers.js).` };
      });
    return {
      name: `spillway/layers/${from}`,
      files: [from === '.' ? 'src/*.ts' : `src/${from}/*.ts`],
      rules: { 'no-restricted-imports': ['error', { patterns }] },
    };
  });
}

/** @param {string} layer */
function describe(layer) {
  return layer === '.' ? 'src/index.ts' : `src/${layer}`;
}

/** @param {string} layer */
function describeAllowed(layer) {
  const allowed = layers[layer] ?? [];
  return allowed.length === 0 ? 'no other layer' : `only ${allowed.join(', ')}`;
}

/** @param {string} text */
function escapeRegex(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
