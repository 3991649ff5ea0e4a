import { performance } from 'node:perf_hooks';
import { machineCpuSeconds, processCpuSeconds } from './cpu.js';

/** CPU-seconds per second over a window, by who used them. */
export interface CpuUse {
  /** The server under test (all its threads). */
  readonly server: number;
  /** The Kafka broker's JVM (NaN if its process was not found); idle while the embedded broker is measured. */
  readonly kafka: number;
  /** This process: the load generator. */
  readonly bench: number;
  /** Everything else on the machine: other programs, the noise. */
  readonly other: number;
  /** Taken from this machine by the hypervisor. */
  readonly steal: number;
}

/** Starts counting; the returned function ends the window and reports its CPU use. */
export function cpuWindow(serverPid: number, kafkaPid: number): () => CpuUse {
  const t0 = performance.now();
  const machine0 = machineCpuSeconds();
  const own0 = process.cpuUsage();
  const server0 = processCpuSeconds(serverPid);
  const kafka0 = processCpuSeconds(kafkaPid);
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const machine1 = machineCpuSeconds();
    const own = process.cpuUsage(own0);
    const bench = (own.user + own.system) / 1e6 / seconds;
    const server = (processCpuSeconds(serverPid) - server0) / seconds;
    const kafka = (processCpuSeconds(kafkaPid) - kafka0) / seconds;
    const busy = (machine1.busy - machine0.busy) / seconds;
    return {
      server,
      kafka,
      bench,
      other: Math.max(0, busy - server - bench - (Number.isFinite(kafka) ? kafka : 0)),
      steal: (machine1.steal - machine0.steal) / seconds,
    };
  };
}
