import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { startServer, type ChildServer } from './child-server.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const spillwayMain = join(repoRoot, 'dist/cli/main.js');

/** Fails early with a useful message if `npm run build` has not been run, warns if it looks stale. */
export function ensureBuilt(): void {
  if (!existsSync(spillwayMain)) throw new Error(`${spillwayMain} is missing: run \`npm run build\` first`);
  const built = statSync(spillwayMain).mtimeMs;
  const newest = newestMtime(join(repoRoot, 'src'));
  if (newest > built) {
    process.stderr.write('warning: src/ has changes newer than dist/cli/main.js; run `npm run build` to measure them\n');
  }
}

export interface BuildSnapshot {
  /** main.js of the copy, to run with `node`. */
  readonly main: string;
  /** SHA-256 of the copied .js files (path and content), to tell which build a result is of. */
  readonly sha256: string;
  remove(): void;
}

/**
 * A private copy of dist/ for the duration of a run, under bench/results/ (git-ignored) so that
 * its imports still resolve to the project's node_modules. A rebuild during the run (a test
 * run rebuilds dist/) cannot then change what later rounds measure.
 */
export function snapshotBuild(): BuildSnapshot {
  ensureBuilt();
  const root = join(repoRoot, 'bench/results/.snapshots');
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(join(root, 'build-'));
  cpSync(join(repoRoot, 'dist'), join(dir, 'dist'), { recursive: true });
  const hash = createHash('sha256');
  for (const file of listFiles(join(dir, 'dist')).filter((f) => f.endsWith('.js'))) {
    hash.update(file.slice(dir.length)).update('\0').update(readFileSync(file)).update('\0');
  }
  return {
    main: join(dir, 'dist/cli/main.js'),
    sha256: hash.digest('hex'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)]))
    .sort();
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** A model's model.yaml as it stands in models/ (or `source`). */
export function readModelConfig(name: string, source = join(repoRoot, 'models')): Record<string, unknown> {
  return parse(readFileSync(join(source, name, 'model.yaml'), 'utf8')) as Record<string, unknown>;
}

export interface ModelRepositoryCopy {
  readonly dir: string;
  /** Each model's effective model.yaml, as written. */
  readonly configs: Readonly<Record<string, Record<string, unknown>>>;
  remove(): void;
}

/**
 * A temporary model repository holding copies of some of models/, with model.yaml settings
 * overridden where asked. Serving only the model under test keeps other models' consumers
 * (and their ONNX runtimes) out of the measurement.
 */
export function modelRepository(
  models: readonly { name: string; overrides?: Record<string, unknown> }[],
  source = join(repoRoot, 'models'),
): ModelRepositoryCopy {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-bench-models-'));
  const configs: Record<string, Record<string, unknown>> = {};
  for (const { name, overrides } of models) {
    const target = join(dir, name);
    cpSync(join(source, name), target, { recursive: true });
    const file = join(target, 'model.yaml');
    const config = { ...(parse(readFileSync(file, 'utf8')) as Record<string, unknown>), ...overrides };
    writeFileSync(file, stringify(config));
    configs[name] = config;
  }
  return { dir, configs, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface SpillwayProcess extends ChildServer {
  readonly dataDir: string;
}

/**
 * `spillway serve` in a child process on a fresh data folder, with warn-level logs, started from
 * a neutral folder and without SPILLWAY_* variables so no stray spillway.yaml or environment
 * setting changes what is measured. stop() also deletes the data folder.
 */
export async function startSpillway(o: {
  /** The main.js to run (a {@link snapshotBuild}); default dist/cli/main.js. */
  main?: string;
  models: string;
  nodeArgs?: readonly string[];
  args?: readonly string[];
  dataRoot?: string;
}): Promise<SpillwayProcess> {
  const dataDir = mkdtempSync(join(o.dataRoot ?? tmpdir(), 'spillway-bench-data-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SPILLWAY_')));
  let server: ChildServer;
  try {
    server = await startServer({
      name: 'spillway',
      args: [
        ...(o.nodeArgs ?? []),
        o.main ?? spillwayMain,
        'serve',
        '--port',
        '{port}',
        '--data',
        dataDir,
        '--models',
        o.models,
        '--log-level',
        'warn',
        ...(o.args ?? []),
      ],
      cwd: dataDir,
      env,
      readyPath: '/readyz',
    });
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    ...server,
    dataDir,
    stop: async (graceMs) => {
      const result = await server.stop(graceMs);
      rmSync(dataDir, { recursive: true, force: true });
      return result;
    },
  };
}
