#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { configFlags } from '../config/flags.js';
import { loadConfig } from '../config/load-config.js';
import { SpillwayError, describeError } from '../protocol/errors.js';
import { dispatcher, gateway, serve, worker } from './commands.js';
import { dlq } from './dlq-command.js';
import { programName } from './program-name.js';
import { tap } from './tap-command.js';

const commands = {
  serve: { run: serve, summary: 'gateway, workers and the embedded queue in one process (default)' },
  gateway: { run: gateway, summary: 'the HTTP API alone' },
  worker: { run: worker, summary: 'a serving node that pulls and runs requests' },
  dispatcher: { run: dispatcher, summary: 'delivers callbacks (webhooks) alone; serve runs one already' },
  tap: { run: tap, summary: 'keeps one row per prediction in a DuckDB file for analytics (docs/analytics.md)' },
  dlq: { run: undefined, summary: 'dead letters: `dlq list [--json]`, `dlq replay --id <id>[,<id>…] | --all`' },
} as const;
type CommandName = keyof typeof commands;

/** Commands that talk to a deployment or to nobody, with flags of their own (see their --help). */
const tools = {
  bench: {
    summary: 'send a load profile to a running deployment and report every request\'s fate',
    load: async () => (await import('./bench-command.js')).runBench,
  },
  plan: {
    summary: 'how many workers a load needs, with the queue and without it',
    load: async () => (await import('./plan-command.js')).runPlan,
  },
  keys: {
    summary: 'API keys: create, list, revoke, rotate',
    load: async () => (await import('./keys-command.js')).runKeys,
  },
  autoscale: {
    summary: "runs a model's workers on this machine, as many as its backlog needs",
    load: async () => (await import('./autoscale-command.js')).runAutoscale,
  },
} as const;
const isTool = (name: string | undefined): name is keyof typeof tools => name !== undefined && Object.hasOwn(tools, name);

function usage(): string {
  const program = programName();
  const lines = [
    `Usage: ${program} [command] [options]`,
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`),
    ...Object.entries(tools).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary} (${program} ${name} --help)`),
    '',
    'Options (each also settable in spillway.yaml or as the environment variable shown):',
    `  ${'--config <file>'.padEnd(30)} config file (default: ./spillway.yaml if present) [SPILLWAY_CONFIG]`,
    ...configFlags().map((f) => {
      const left = f.type === 'boolean' ? `--${f.flag}` : `--${f.flag} <${f.type === 'array' ? 'a,b' : f.type}>`;
      const dflt = f.default === undefined ? '' : ` (default: ${String(f.default)})`;
      return `  ${left.padEnd(30)} ${f.description}${dflt} [${f.env}]`;
    }),
    `  ${'--help'.padEnd(30)} show this help`,
    `  ${'--version'.padEnd(30)} show the version`,
  ];
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (isTool(first)) {
    process.exitCode = await (await tools[first].load())(rest);
    return;
  }
  const options: NonNullable<ParseArgsConfig['options']> = {
    config: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    // spillway dlq only
    all: { type: 'boolean' },
    id: { type: 'string' },
    json: { type: 'boolean' },
    version: { type: 'boolean' },
  };
  for (const f of configFlags()) options[f.flag] = { type: f.type === 'boolean' ? 'boolean' : 'string' };
  const { values, positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  if (values['help'] === true) {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  if (values['version'] === true) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return;
  }
  const [name = 'serve', ...extra] = positionals;
  const isDlq = name === 'dlq' && extra.length === 1 && (extra[0] === 'list' || extra[0] === 'replay');
  if (!(name in commands) || (extra.length > 0 && !isDlq) || (name === 'dlq' && !isDlq)) {
    throw new UsageError(`unknown command "${[name, ...extra].join(' ')}"`);
  }
  const { config: file, all, id, json, ...flags } = values;
  if (!isDlq && (all !== undefined || id !== undefined || json !== undefined)) throw new UsageError('--all, --id and --json belong to the dlq command');
  const config = loadConfig({
    ...(typeof file === 'string' ? { file } : {}),
    env: process.env,
    argv: flags as Record<string, string | boolean | undefined>,
  });
  if (isDlq) {
    const ids = typeof id === 'string' ? id.split(',').map((s) => s.trim()).filter((s) => s !== '') : [];
    await dlq(config, { action: extra[0] as 'list' | 'replay', all: all === true, ids, json: json === true });
    return;
  }
  await commands[name as Exclude<CommandName, 'dlq'>].run(config);
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof SpillwayError && error.code === 'SPILLWAY_INVALID_CONFIG') {
    process.stderr.write(`spillway: invalid configuration\n${error.details.map((d) => `  - ${d.pointer}: ${d.message}`).join('\n') || `  ${error.message}`}\n`);
    process.exit(2);
  }
  const isUsage = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
  if (isUsage) {
    process.stderr.write(`spillway: ${(error as Error).message}\n\n${usage()}\n`);
    process.exit(2);
  }
  process.stderr.write(`spillway: ${describeError(error)}\n`);
  process.exit(1);
});
