import { performance } from 'node:perf_hooks';
import { machineCpuSeconds, processCpuSeconds } from './cpu.js';

/** CPU-seconds per second over a window, by who used them. */
export interface CpuUse {
  /** The system under test: every Spillway process together (all their threads). */
  readonly server: number;
  /**
   * Each Spillway process by the command it runs (`serve`, or `gateway` and `worker`): in the
   * split topology this says which of the two a deployment would need more of.
   */
  readonly processes: Readonly<Record<string, number>>;
  /** The Kafka broker's JVM (NaN if there is none); idle while another broker is measured. */
  readonly kafka: number;
  /** The Redis server (NaN if there is none); idle while nothing measured uses it. */
  readonly redis: number;
  /** This process: the load generator. */
  readonly bench: number;
  /** Everything else on the machine: other programs, the noise. */
  readonly other: number;
  /** Taken from this machine by the hypervisor. */
  readonly steal: number;
}

/** The processes a window counts: Spillway's by command, and the external services (NaN: none). */
export interface CpuSubjects {
  readonly processes: readonly { readonly command: string; readonly pid: number }[];
  readonly kafkaPid: number;
  readonly redisPid: number;
}

/** Starts counting; the returned function ends the window and reports its CPU use. */
export function cpuWindow(subjects: CpuSubjects): () => CpuUse {
  const t0 = performance.now();
  const machine0 = machineCpuSeconds();
  const own0 = process.cpuUsage();
  const procs0 = subjects.processes.map((p) => processCpuSeconds(p.pid));
  const kafka0 = processCpuSeconds(subjects.kafkaPid);
  const redis0 = processCpuSeconds(subjects.redisPid);
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const machine1 = machineCpuSeconds();
    const own = process.cpuUsage(own0);
    const bench = (own.user + own.system) / 1e6 / seconds;
    const perProcess = subjects.processes.map((p, i) => [p.command, (processCpuSeconds(p.pid) - (procs0[i] ?? Number.NaN)) / seconds] as const);
    const server = perProcess.reduce((sum, [, cpu]) => sum + cpu, 0);
    const kafka = (processCpuSeconds(subjects.kafkaPid) - kafka0) / seconds;
    const redis = (processCpuSeconds(subjects.redisPid) - redis0) / seconds;
    const busy = (machine1.busy - machine0.busy) / seconds;
    const known = (v: number) => (Number.isFinite(v) ? v : 0);
    return {
      server,
      processes: Object.fromEntries(perProcess),
      kafka,
      redis,
      bench,
      other: Math.max(0, busy - known(server) - bench - known(kafka) - known(redis)),
      steal: (machine1.steal - machine0.steal) / seconds,
    };
  };
}
