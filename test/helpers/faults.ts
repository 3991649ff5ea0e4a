import { once } from 'node:events';
import { expect } from 'vitest';
import type { ErrorCode } from '../../src/protocol/errors.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { request, waitForFinal } from './http.js';
import { accepted, type LoadResult } from './load.js';
import type { SpillwayProcess } from './processes.js';

/** What fault tests assert of the processes and requests that lived through a fault. */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The process's last lines of output (each cut to 600 characters), for a failure message. */
export function lastOutput(p: SpillwayProcess, lines = 30): string {
  const shown = p.logs.slice(-lines).map((line) => (line.length > 600 ? `${line.slice(0, 600)}…` : line));
  return shown.join('\n') || '(no output)';
}

/**
 * Fails, with the process's last output, unless it is still running and (a gateway) answers /healthz. A fault
 * may make a gateway answer 503; it must never make it exit.
 */
export async function expectAlive(p: SpillwayProcess, what: string): Promise<void> {
  const exited = () => p.child.exitCode !== null || p.child.signalCode !== null;
  const dead = () => `${what} exited (code ${p.child.exitCode}, signal ${p.child.signalCode}); its last output:\n${lastOutput(p)}`;
  if (exited()) throw new Error(dead());
  if (p.url === '') return; // a worker serves no HTTP
  const health = await request(`${p.url}/healthz`).catch((error: unknown) => error as Error);
  // A refused connection usually means the process is on its way out: give its exit a moment to show.
  if (health instanceof Error && !exited()) await Promise.race([once(p.child, 'exit'), sleep(1000)]);
  if (exited()) throw new Error(dead());
  if (health instanceof Error || health.status !== 200) {
    const answer = health instanceof Error ? describeFetchError(health) : `status ${health.status}`;
    throw new Error(`${what} does not answer /healthz (${answer}); its last output:\n${lastOutput(p)}`);
  }
}

/** A fetch failure's own words and its cause's code (ECONNREFUSED, ...). */
export function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return [String(error), cause?.code ?? cause?.message].filter(Boolean).join(': ');
}

/**
 * While a broker or store is down a live gateway still answers: every request that was not
 * accepted got a 503 with one of `codes` and a Retry-After. A request with no answer at all
 * (connection refused or reset) means the gateway died or stopped listening, which no outage may cause.
 */
export function expectOnlyUnavailable(gateway: SpillwayProcess, results: readonly LoadResult[], codes: readonly ErrorCode[]): void {
  const refusedWell = (r: LoadResult) =>
    r.answer?.status === 503 && codes.includes((r.answer.body as { code?: ErrorCode }).code as ErrorCode) && r.answer.headers.get('retry-after') !== null;
  const wrong = results.filter((r) => !accepted(r) && !refusedWell(r));
  if (wrong.length === 0) return;
  const shown = wrong
    .slice(0, 5)
    .map((r) => `#${r.index}: ${r.answer === undefined ? `no answer (${describeFetchError(r.error)})` : `${r.answer.status} ${JSON.stringify(r.answer.body)}`}`);
  throw new Error(
    `${wrong.length} requests were refused other than with 503 ${codes.join(' or ')} and a Retry-After, e.g.\n${shown.join('\n')}\n` +
      `gateway exit code ${gateway.child.exitCode}, signal ${gateway.child.signalCode}; its last output:\n${lastOutput(gateway)}`,
  );
}

/** Every accepted request reaches one final, successful outcome, which polls keep returning. */
export async function expectAllCompleted(gateway: SpillwayProcess, results: readonly LoadResult[]): Promise<number> {
  const url = gateway.url;
  const ids = results.filter(accepted).map((r) => r.answer!.body.id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids) {
    const final = await waitForFinal(url, id, 90_000).catch(async (error: unknown) => {
      // A poll that cannot connect is about the gateway, not the prediction: say so.
      await expectAlive(gateway, 'the gateway');
      throw error;
    });
    expect(final.status).toBe('succeeded');
    expect((await request<PredictionRecord>(`${url}/v1/predictions/${id}`)).body).toEqual(final);
  }
  return ids.length;
}
