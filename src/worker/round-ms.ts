/** Milliseconds to the microsecond: finer is clock noise, and it keeps records and heartbeats short. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
