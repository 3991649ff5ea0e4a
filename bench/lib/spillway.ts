import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { startServer, type ChildServer } from './child-server.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const spillwayMain = join(repoRoot, 'dist/cli/main.js');

/** Fails early with a useful message if `npm run build` has not been run in `root`, warns if it looks stale. */
export function ensureBuilt(root = repoRoot): void {
  const main = join(root, 'dist/cli/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` in ${root} first`);
  if (!existsSync(join(root, 'node_modules'))) throw new Error(`${root}/node_modules is missing: run \`npm ci\` there first`);
  const built = statSync(main).mtimeMs;
  const newest = newestMtime(join(root, 'src'));
  if (newest > built) {
    process.stderr.write(`warning: ${root}/src has changes newer than its dist/cli/main.js; run \`npm run build\` there to measure them\n`);
  }
}

/** Which code a checkout holds: its commit, and whether src/ or models/ differ from it. */
export interface CheckoutState {
  readonly root: string;
  readonly git_commit: string;
  readonly git_dirty: boolean;
}

export function checkoutState(root = repoRoot): CheckoutState {
  const git = (args: readonly string[]) => {
    try {
      return execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return 'unknown';
    }
  };
  return { root, git_commit: git(['rev-parse', '--short', 'HEAD']), git_dirty: git(['status', '--porcelain', '--', 'src', 'models']) !== '' };
}

export interface BuildSnapshot extends CheckoutState {
  /** main.js of the copy, to run with `node`. */
  readonly main: string;
  /** SHA-256 of the copied .js files (path and content), to tell which build a result is of. */
  readonly sha256: string;
  remove(): void;
}

/**
 * A private copy of `root`'s dist/ for the duration of a run, so that a rebuild during the run
 * (a test run rebuilds dist/) cannot change what later rounds measure. It lives under this
 * checkout's bench/results/ (git-ignored), never inside another checkout; for another checkout
 * (`--before`) a node_modules link next to the copy makes its imports resolve to that
 * checkout's own dependencies, and its package.json comes along (module type, version).
 */
export function snapshotBuild(root = repoRoot): BuildSnapshot {
  ensureBuilt(root);
  const snapshots = join(repoRoot, 'bench/results/.snapshots');
  mkdirSync(snapshots, { recursive: true });
  const dir = mkdtempSync(join(snapshots, 'build-'));
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  // The build reads its own package.json (its version, for `--version` and /v2's metadata).
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  if (root !== repoRoot) symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const hash = createHash('sha256');
  for (const file of listFiles(join(dir, 'dist')).filter((f) => f.endsWith('.js'))) {
    hash.update(file.slice(dir.length)).update('\0').update(readFileSync(file)).update('\0');
  }
  return {
    ...checkoutState(root),
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

/** The Spillway commands a bench starts: `serve` (all in one), `gateway` and `worker` apart, or a `tap` beside them. */
export type SpillwayCommand = 'serve' | 'gateway' | 'worker' | 'tap' | 'autoscale';

/**
 * `spillway serve` (or `gateway`, `worker`) in a child process on a fresh data folder, with
 * warn-level logs, started from a neutral folder and without SPILLWAY_* variables so no stray
 * spillway.yaml or environment setting changes what is measured. stop() also deletes the data
 * folder, unless it was given as `dataDir` (then its owner deletes it).
 */
export async function startSpillway(o: {
  /** The main.js to run (a {@link snapshotBuild}); default dist/cli/main.js. */
  main?: string;
  models: string;
  nodeArgs?: readonly string[];
  args?: readonly string[];
  dataRoot?: string;
  /** Default `serve`. */
  command?: SpillwayCommand;
  /** A data folder to use instead of a fresh one: processes of one deployment share it. */
  dataDir?: string;
}): Promise<SpillwayProcess> {
  const command = o.command ?? 'serve';
  const ownsData = o.dataDir === undefined;
  const dataDir = o.dataDir ?? mkdtempSync(join(o.dataRoot ?? tmpdir(), 'spillway-bench-data-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SPILLWAY_')));
  // A worker or a tap has no HTTP port to probe; its start-up line (an info log) says it is subscribed.
  const headless = command === 'worker' || command === 'tap' || command === 'autoscale';
  const readyTexts: Partial<Record<SpillwayCommand, string>> = { worker: 'Spillway worker started', tap: 'Spillway tap', autoscale: 'Spillway autoscaler started' };
  const readyText = readyTexts[command];
  const ready = readyText === undefined ? { readyPath: '/readyz' } : { readyText };
  let server: ChildServer;
  try {
    server = await startServer({
      name: `spillway ${command}`,
      args: [
        ...(o.nodeArgs ?? []),
        o.main ?? spillwayMain,
        command,
        ...(headless ? [] : ['--port', '{port}']),
        '--data',
        dataDir,
        '--models',
        o.models,
        '--log-level',
        headless ? 'info' : 'warn',
        ...(o.args ?? []),
      ],
      cwd: dataDir,
      env,
      ...ready,
    });
  } catch (error) {
    if (ownsData) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    ...server,
    dataDir,
    stop: async (graceMs) => {
      const result = await server.stop(graceMs);
      if (ownsData) rmSync(dataDir, { recursive: true, force: true });
      return result;
    },
  };
}

/** How a bench deploys Spillway: one `serve` process, or one `gateway` and one `worker` process. */
export type Topology = 'serve' | 'split';

export interface SpillwayDeployment {
  /** The HTTP API (of `serve`, or of the gateway). */
  readonly url: string;
  /** Every process, by the command it runs, so CPU can be counted per process. */
  readonly processes: readonly { readonly command: SpillwayCommand; readonly pid: number }[];
  readonly dataDir: string;
  /** Stops every process and deletes the data folder. */
  stop(): Promise<void>;
}

/**
 * A fresh deployment in `topology`. In `split` both processes get the same --broker, --store,
 * --prefix, --models and data folder: the embedded broker and the SQLite store work across
 * processes on one folder (SQLite WAL), so the pair is the same system as `serve`, cut in two.
 */
export async function startDeployment(o: {
  main?: string;
  models: string;
  args?: readonly string[];
  dataRoot?: string;
  topology: Topology;
}): Promise<SpillwayDeployment> {
  const base = { ...(o.main === undefined ? {} : { main: o.main }), models: o.models, ...(o.args === undefined ? {} : { args: o.args }) };
  if (o.topology === 'serve') {
    const server = await startSpillway({ ...base, ...(o.dataRoot === undefined ? {} : { dataRoot: o.dataRoot }) });
    return { url: server.url, processes: [{ command: 'serve', pid: server.pid }], dataDir: server.dataDir, stop: async () => void (await server.stop()) };
  }
  const dataDir = mkdtempSync(join(o.dataRoot ?? tmpdir(), 'spillway-bench-data-'));
  const started: SpillwayProcess[] = [];
  const stopAll = async () => {
    // The gateway first, so no new request reaches the queue while the worker drains.
    for (const p of started) await p.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    // The gateway first: on the embedded broker it creates the database the worker then opens.
    started.push(await startSpillway({ ...base, command: 'gateway', dataDir }));
    started.push(await startSpillway({ ...base, command: 'worker', dataDir }));
  } catch (error) {
    await stopAll();
    throw error;
  }
  const [gateway, worker] = started as [SpillwayProcess, SpillwayProcess];
  return {
    url: gateway.url,
    processes: [
      { command: 'gateway', pid: gateway.pid },
      { command: 'worker', pid: worker.pid },
    ],
    dataDir,
    stop: stopAll,
  };
}
