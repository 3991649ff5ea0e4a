/**
 * The closed-loop driver of the throughput benches: autocannon, `connections` connections each
 * with one request outstanding. src/loadgen has only an open loop (arrivals fixed in advance);
 * a closed loop finds the most a server finishes per second, which is a different question, so
 * autocannon stays for it. Its latency figures do not: each 2xx response time goes through
 * src/loadgen/stats (nearest rank, to 0.01 ms) like every other bench and `spillway bench`,
 * instead of autocannon's HDR histogram of whole milliseconds.
 */
import autocannon from 'autocannon';
import { distribution, NumberList, type Distribution } from '../../src/loadgen/stats.js';

export interface ClosedLoopOptions {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly connections: number;
  readonly seconds: number;
  readonly timeout_s: number;
  /** Requests per second across all connections (autocannon's overallRate); unset: as fast as answers come. */
  readonly rate?: number;
  /** Checks response bodies (see body-check.ts); autocannon counts a false as a mismatch. */
  readonly verify?: (body: string) => boolean;
}

export interface ClosedLoopResult {
  readonly result: autocannon.Result;
  /** Client latency of the 2xx responses, in ms. */
  readonly latency_ms: Distribution;
}

export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const latencies = new NumberList();
  const options: autocannon.Options = {
    url: o.url,
    method: 'POST',
    headers: o.headers,
    body: o.body,
    connections: o.connections,
    duration: o.seconds,
    timeout: o.timeout_s,
    // autocannon stops at its first sample after the duration; frequent samples keep each
    // window within 0.1 s of the duration (rates divide by the measured window either way).
    sampleInt: 100,
    ...(o.rate === undefined ? {} : { overallRate: o.rate }),
    ...(o.verify === undefined ? {} : { verifyBody: o.verify as (body: unknown) => boolean }),
  };
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (error: unknown, r: autocannon.Result) => (error instanceof Error ? reject(error) : resolve(r)));
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
  return { result, latency_ms: distribution(latencies.values()) };
}
