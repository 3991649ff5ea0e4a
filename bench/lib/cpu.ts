import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * CPU accounting from /proc, to tell a slow system from a busy machine: sampled before and
 * after a measurement, it shows whether the server was bound by its single JavaScript thread
 * (close to 1 CPU-second per second) and how much CPU other programs took meanwhile. Every
 * figure is NaN where there is no /proc.
 */

let ticksPerSecond: number | undefined;

function ticks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function processCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/**
 * CPU seconds a process's main thread has used so far (its thread id is the pid): in a Node
 * process, its JavaScript event loop, apart from worker threads and V8's and libuv's helpers.
 */
export function mainThreadCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/task/${pid}/stat`);
}

function statCpuSeconds(path: string): number {
  try {
    const stat = readFileSync(path, 'utf8');
    // The command name may hold spaces; after it, utime and stime are the 12th and 13th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticks();
  } catch {
    return Number.NaN;
  }
}

export interface MachineCpu {
  /** CPU seconds this machine spent running anything, all cores together. */
  readonly busy: number;
  /** CPU seconds the hypervisor gave to other machines while this one wanted to run. */
  readonly steal: number;
}

/** Machine-wide CPU seconds so far, from the first line of /proc/stat. */
export function machineCpuSeconds(): MachineCpu {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
    return { busy: (user + nice + system + irq + softirq) / ticks(), steal: steal / ticks() };
  } catch {
    return { busy: Number.NaN, steal: Number.NaN };
  }
}
