import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { cliPath, repoRoot } from './paths.js';

export interface SpillwayProcess {
  readonly child: ChildProcess;
  /** The gateway's base URL (serve and gateway commands). */
  readonly url: string;
  readonly logs: string[];
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs the built `spillway` command as its own process and waits until it is serving. Tests
 * that crash or restart parts of Spillway use real processes, as production does.
 */
export async function spawnSpillway(args: readonly string[], env: Record<string, string> = {}): Promise<SpillwayProcess> {
  const level = env['SPILLWAY_LOG_LEVEL'] ?? 'info';
  const child = spawn(process.execPath, [cliPath, ...args, '--log-level', level], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  // SPILLWAY_TEST_PROCESS_LOGS=<folder>: every spawned process's output and exit, one file each.
  const logDir = process.env['SPILLWAY_TEST_PROCESS_LOGS'];
  const logFile = logDir === undefined ? undefined : join(logDir, `${args[0] ?? 'spillway'}-${child.pid ?? 'nopid'}.log`);
  const record = (line: string) => {
    if (logFile !== undefined) appendFileSync(logFile, line + '\n');
  };
  const lines = createInterface({ input: child.stdout });
  lines.on('line', record);
  createInterface({ input: child.stderr }).on('line', (line) => {
    logs.push(line);
    record(line);
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`spillway ${args.join(' ')} did not start:\n${logs.join('\n')}`)), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`spillway ${args.join(' ')} exited with ${code}:\n${logs.join('\n')}`));
    });
    lines.on('line', (line) => {
      logs.push(line);
      const parsed = JSON.parse(line) as { msg?: string; url?: string };
      if (parsed.msg?.startsWith('Spillway')) {
        clearTimeout(timer);
        resolve(parsed.url ?? '');
      }
    });
  });
  child.removeAllListeners('exit');
  child.on('exit', (code, signal) => record(`[spillway test] process exited: code ${code} signal ${signal}`));
  return {
    child,
    url,
    logs,
    kill: async (signal) => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}

/** Runs the command to completion and returns its exit code and output. */
export async function runSpillway(args: readonly string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [cliPath, ...args], { cwd: repoRoot, env: { ...process.env, ...env } });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

/**
 * Starts Spillway processes for the tests of one file, with quick heartbeats, and kills whatever
 * is left after each test (call `killAll` from afterEach).
 */
export function processesOfTest(env: Record<string, string> = { SPILLWAY_WORKER_HEARTBEAT_MS: '200' }) {
  const running: SpillwayProcess[] = [];
  return {
    start: async (args: string[]): Promise<SpillwayProcess> => {
      const p = await spawnSpillway(args, env);
      running.push(p);
      return p;
    },
    killAll: async (): Promise<void> => {
      await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
    },
  };
}
