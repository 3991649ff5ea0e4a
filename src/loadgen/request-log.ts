/** What the POST's answer made of a request. */
export const Outcome = { pending: 0, accepted: 1, rejected: 2, error: 3 } as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** What became of an accepted request. */
export const Fate = { none: 0, succeeded: 1, failed: 2, lost: 3 } as const;
export type Fate = (typeof Fate)[keyof typeof Fate];

type Column = Float64Array | Float32Array | Uint8Array | Uint16Array;

/**
 * One row per request, stored as typed columns (about 50 bytes a request) so a run of millions
 * of requests stays small; no ids or bodies are kept once a request is settled. Times are ms
 * since the start of the run; NaN where not (yet) known.
 */
export class RequestLog {
  private cap = 1024;
  size = 0;
  scheduled = new Float64Array(this.cap);
  sent = new Float64Array(this.cap);
  answered = new Float64Array(this.cap);
  final = new Float64Array(this.cap);
  queueMs = new Float32Array(this.cap);
  inferenceMs = new Float32Array(this.cap);
  status = new Uint16Array(this.cap);
  outcome = new Uint8Array(this.cap);
  fate = new Uint8Array(this.cap);
  phase = new Uint8Array(this.cap);
  /** Index into `errorKeys` for requests whose outcome is `error`. */
  errorKey = new Uint16Array(this.cap);
  readonly errorKeys: string[] = [];

  add(scheduledMs: number, phase: number): number {
    if (this.size === this.cap) this.grow();
    const i = this.size++;
    this.scheduled[i] = scheduledMs;
    this.phase[i] = phase;
    for (const c of [this.sent, this.answered, this.final, this.queueMs, this.inferenceMs]) c[i] = Number.NaN;
    return i;
  }

  /** A key per kind of error: the HTTP status ("500"), or the transport failure ("ECONNRESET"). */
  setError(i: number, key: string): void {
    let k = this.errorKeys.indexOf(key);
    if (k < 0) k = this.errorKeys.push(key) - 1;
    this.outcome[i] = Outcome.error;
    this.errorKey[i] = k;
  }

  lagMs(i: number): number {
    return (this.sent[i] ?? Number.NaN) - (this.scheduled[i] ?? Number.NaN);
  }

  /** Scheduled send to final result known, for requests with a final result. */
  latencyMs(i: number): number {
    return (this.final[i] ?? Number.NaN) - (this.scheduled[i] ?? Number.NaN);
  }

  /**
   * When the request stopped being in flight on the client: an accepted one when its result
   * came (NaN if it never did), a refused or failed one when the POST was answered.
   */
  settledMs(i: number): number {
    return (this.outcome[i] === Outcome.accepted ? this.final[i] : this.answered[i]) ?? Number.NaN;
  }

  private grow(): void {
    this.cap *= 2;
    const grow = <T extends Column>(old: T, make: (n: number) => T): T => {
      const next = make(this.cap);
      next.set(old);
      return next;
    };
    this.scheduled = grow(this.scheduled, (n) => new Float64Array(n));
    this.sent = grow(this.sent, (n) => new Float64Array(n));
    this.answered = grow(this.answered, (n) => new Float64Array(n));
    this.final = grow(this.final, (n) => new Float64Array(n));
    this.queueMs = grow(this.queueMs, (n) => new Float32Array(n));
    this.inferenceMs = grow(this.inferenceMs, (n) => new Float32Array(n));
    this.status = grow(this.status, (n) => new Uint16Array(n));
    this.outcome = grow(this.outcome, (n) => new Uint8Array(n));
    this.fate = grow(this.fate, (n) => new Uint8Array(n));
    this.phase = grow(this.phase, (n) => new Uint8Array(n));
    this.errorKey = grow(this.errorKey, (n) => new Uint16Array(n));
  }
}
