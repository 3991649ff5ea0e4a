import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { checkoutState, repoRoot } from './spillway.js';

export interface MachineInfo {
  readonly cpu_model: string;
  readonly cpus: number;
  readonly memory_gib: number;
  readonly kernel: string;
  readonly node: string;
  readonly load_average_1m_at_start: number;
  readonly tmp_filesystem: string;
  readonly git_commit: string;
  readonly git_dirty: boolean;
}

/** What a reader needs to judge a figure: the machine, the software, and how busy it was. */
export function machineInfo(): MachineInfo {
  return {
    cpu_model: cpuModel(),
    cpus: availableParallelism(),
    memory_gib: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    load_average_1m_at_start: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    tmp_filesystem: run('df', ['--output=fstype', '/tmp']).split('\n').at(-1)?.trim() ?? 'unknown',
    git_commit: checkoutState().git_commit,
    git_dirty: checkoutState().git_dirty,
  };
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line !== undefined) return line.split(':')[1]?.trim() ?? 'unknown';
  } catch {
    // Not Linux.
  }
  return cpus()[0]?.model ?? 'unknown';
}

function run(command: string, args: readonly string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

/** Writes bench/results/<name>-<timestamp>.json (git-ignored) and returns its path. */
export function writeResult(name: string, data: unknown): string {
  const dir = join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const path = join(dir, `${name}-${stamp}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}

/** A Markdown table, columns padded so it also reads well in a terminal. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function log(message: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Fixed decimals for tables; unknown (null, NaN) and infinite values print as a dash. */
export function fmt(value: number | null | undefined, decimals = 1): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(decimals) : '–';
}

/** a ÷ b of two figures that may be unknown (null): NaN then, which fmt prints as a dash. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number {
  return (a ?? Number.NaN) / (b ?? Number.NaN);
}

/** a − b of two figures that may be unknown, like {@link ratio}. */
export function diff(a: number | null | undefined, b: number | null | undefined): number {
  return (a ?? Number.NaN) - (b ?? Number.NaN);
}

/** The response counts every throughput measurement is checked on (all but 200 must be 0). */
export interface ResponseChecks {
  readonly connections: number;
  readonly round: number;
  readonly ok_200: number;
  readonly status_202: number;
  readonly non_2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly bodies_checked: number;
  readonly bodies_bad: number;
}

/**
 * The checks table of a throughput bench: one row per measurement, named in its first column
 * (`who` heads it), with `extra` columns after the counts.
 */
export function checksTable(who: string, rows: readonly { readonly name: string; readonly m: ResponseChecks; readonly extra?: readonly string[] }[], extraHeaders: readonly string[] = []): string {
  return markdownTable(
    [who, 'c', 'round', '200', '202', 'non-2xx', 'errors', 'timeouts', 'bodies checked', 'bad bodies', ...extraHeaders],
    rows.map(({ name, m, extra }) => [
      name,
      String(m.connections),
      String(m.round),
      String(m.ok_200),
      String(m.status_202),
      String(m.non_2xx),
      String(m.errors),
      String(m.timeouts),
      String(m.bodies_checked),
      String(m.bodies_bad),
      ...(extra ?? []),
    ]),
  );
}
