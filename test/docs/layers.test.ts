import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/paths.js';

type Layers = Readonly<Record<string, readonly string[]>>;

// layers.js is plain JavaScript for eslint.config.js; the test takes its shape on trust.
const { layers, layerOf } = (await import(pathToFileURL(join(repoRoot, 'layers.js')).href)) as {
  layers: Layers;
  layerOf: (folder: string) => string;
};

describe('the layer rule in the linter', () => {
  let eslint: ESLint;
  beforeAll(() => {
    // The repository's own config, minus type information: the layer rule reads only the
    // import's text, and a made-up file is in no TypeScript project.
    eslint = new ESLint({ cwd: repoRoot, overrideConfig: tseslint.configs.disableTypeChecked });
  });

  /** The layer rule's complaints about `code` as if it were the file at `filePath`. */
  async function layerErrors(code: string, filePath: string): Promise<string[]> {
    const [result] = await eslint.lintText(code, { filePath });
    return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
  }

  it.each([
    ['protocol importing the broker interface', 'src/protocol/x.ts', "import type { Broker } from '../brokers/broker.js';"],
    ['the worker importing the gateway', 'src/worker/x.ts', "import type { Problem } from '../gateway/problem.js';"],
    ['a gateway route importing the worker', 'src/gateway/routes/x.ts', "import type { SyncModel } from '../../worker/sync-server.js';"],
    ['the gateway importing an adapter', 'src/gateway/x.ts', "import type { SqliteStore } from '../stores/sqlite/sqlite-store.js';"],
    ['an interface statically importing its adapter', 'src/brokers/x.ts', "import type { KafkaBroker } from './kafka/kafka-broker.js';"],
    ['one adapter importing another', 'src/brokers/kafka/x.ts', "import type { EmbeddedBroker } from '../embedded/embedded-broker.js';"],
    ['a re-export across layers', 'src/http/x.ts', "export { workerGroup } from '../worker/worker.js';"],
  ])('reports %s', async (_, filePath, code) => {
    const errors = await layerErrors(`${code}\n`, filePath);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('(layers.js)');
  });

  it.each([
    ['protocol importing protocol', 'src/protocol/x.ts', "import type { ErrorBody } from './errors.js';"],
    ['the worker importing http and protocol', 'src/worker/x.ts', "import type { Problem } from '../http/problem.js';\nimport type { Topics } from '../protocol/topics.js';"],
    ['an adapter importing its interface and sqlite', 'src/brokers/embedded/x.ts', "import type { Broker } from '../broker.js';\nimport type { SqliteDatabase } from '../../sqlite/open-database.js';"],
    ['a gateway route importing the gateway', 'src/gateway/routes/x.ts', "import type { GatewayContext } from '../context.js';"],
  ])('allows %s', async (_, filePath, code) => {
    expect(await layerErrors(`${code}\n`, filePath)).toEqual([]);
  });

  it('leaves lazy imports alone, so a factory can name its adapters', async () => {
    const code = "export const load = async () => (await import('./kafka/kafka-broker.js')).KafkaBroker;\n";
    expect(await layerErrors(code, 'src/brokers/x.ts')).toEqual([]);
  });
});

describe('the layer of a folder', () => {
  it('is its parent layer for a plain sub-folder', () => {
    expect(layerOf('gateway/routes')).toBe('gateway');
    expect(layerOf('brokers/kafka')).toBe('brokers/kafka');
  });

  it('is an error for a folder the rule does not place, so lint fails until it does', () => {
    expect(() => layerOf('queue')).toThrow(/layers\.js/);
    // Beside adapters, a new folder is most likely one more adapter: not the interface's own.
    expect(() => layerOf('brokers/nats')).toThrow(/layers\.js/);
  });
});

describe('docs/architecture.md', () => {
  it('shows the layer table the linter enforces', () => {
    const doc = readFileSync(join(repoRoot, 'docs/architecture.md'), 'utf8');
    const section = doc.slice(doc.indexOf('### Layers'));
    const table = section.slice(0, section.indexOf('\n#', 1));
    const rows = table.split('\n').filter((line) => line.startsWith('| `'));
    const documented = Object.fromEntries(
      rows.map((row) => {
        const [layer = '', allowed = ''] = row.split('|').slice(1).map((cell) => cell.trim());
        return [layer.replaceAll('`', ''), [...allowed.matchAll(/`([^`]+)`/g)].map((m) => m[1])];
      }),
    );
    expect(documented).toEqual(layers);
  });
});
