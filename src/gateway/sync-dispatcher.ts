import { Agent, request } from 'node:http';
import { SpillwayError, describeError } from '../protocol/errors.js';
import { syncAuthorization, syncRunPath, type SyncRunRequest, type SyncRunResult } from '../protocol/sync-run.js';
import type { WorkerRegistry, WorkerSighting } from './worker-registry.js';

type Attempt =
  | { readonly kind: 'done'; readonly result: SyncRunResult }
  | { readonly kind: 'busy' }
  | { readonly kind: 'unreachable'; readonly reason: string }
  | { readonly kind: 'unauthorized' };

export interface SyncDispatcherOptions {
  /**
   * The deployment's sync secret (`worker.sync_secret`), sent to workers as a Bearer token.
   * Without it no sync call is made: the client gets 503 saying the gateway lacks the secret.
   */
  readonly secret?: string | undefined;
}

/**
 * The gateway side of `dispatch: sync`: each request goes straight to the least loaded worker
 * with a free slot, or is refused at once. Slots are counted here for what this gateway sent
 * and checked again by the worker, which refuses when other gateways filled it. Every call
 * carries the deployment's sync secret, without which a worker runs nothing.
 */
export class SyncDispatcher {
  private readonly sent = new Map<string, number>();
  private readonly agent = new Agent({ keepAlive: true });
  /** Recent service time per model, for a Retry-After that says when a slot is likely free. */
  private readonly serviceMs = new Map<string, number>();
  /** `Bearer <secret>`, or nothing when this gateway has no secret. */
  private readonly authorization: string | undefined;

  constructor(
    private readonly registry: WorkerRegistry,
    options: SyncDispatcherOptions = {},
  ) {
    this.authorization = options.secret === undefined ? undefined : syncAuthorization(options.secret);
  }

  async run(model: string, body: SyncRunRequest): Promise<{ readonly worker: string; readonly result: SyncRunResult }> {
    const authorization = this.authorization;
    if (authorization === undefined) {
      // Never call without it: every worker would refuse, and the cause is this gateway's config.
      throw new SpillwayError(
        'SPILLWAY_NO_WORKERS',
        `this gateway has no sync secret, so it cannot call the workers of ${model} (dispatch: sync): ` +
          'set worker.sync_secret (environment SPILLWAY_WORKER_SYNC_SECRET, flag --sync-secret) to the secret the workers have',
      );
    }
    const workers = this.registry
      .workersFor(model)
      .filter((w): w is WorkerSighting & { endpoint: string } => w.state === 'ready' && !w.draining && w.dispatch === 'sync' && w.endpoint !== undefined);
    if (workers.length === 0) throw new SpillwayError('SPILLWAY_NO_WORKERS', `no worker serving ${model} synchronously has been seen recently`);
    const load = (w: WorkerSighting & { endpoint: string }) => (this.sent.get(key(w.endpoint, model)) ?? 0) / (w.concurrency ?? 1);
    const candidates = workers.filter((w) => load(w) < 1).sort((a, b) => load(a) - load(b));
    let unreachable: string | undefined;
    let unauthorized: string | undefined;
    let refused = 0;
    for (const w of candidates) {
      const k = key(w.endpoint, model);
      this.sent.set(k, (this.sent.get(k) ?? 0) + 1);
      let attempt: Attempt;
      try {
        attempt = await this.post(w.endpoint, model, body, authorization);
      } finally {
        this.sent.set(k, (this.sent.get(k) ?? 1) - 1);
      }
      if (attempt.kind === 'done') {
        const previous = this.serviceMs.get(model) ?? attempt.result.inference_ms;
        this.serviceMs.set(model, previous * 0.9 + attempt.result.inference_ms * 0.1);
        return { worker: w.worker, result: attempt.result };
      }
      // Busy (another gateway filled it), not listening or refusing the secret (nothing ran): try the next one.
      if (attempt.kind === 'unreachable') unreachable = attempt.reason;
      else if (attempt.kind === 'unauthorized') unauthorized = w.endpoint;
      else refused += 1;
    }
    // Before busy: a secret that differs is a fault of the deployment, to be seen and fixed.
    if (unauthorized !== undefined) {
      throw new SpillwayError(
        'SPILLWAY_WORKER_FAILED',
        `the worker at ${unauthorized} refused this gateway's sync secret (401), so the request was not run: ` +
          'every gateway and worker of a deployment needs the same worker.sync_secret',
      );
    }
    if (candidates.length === 0 || refused > 0 || unreachable === undefined) {
      throw new SpillwayError('SPILLWAY_SATURATED', `every slot of the ${workers.length} worker(s) serving ${model} is busy`, {
        retryAfterS: (this.serviceMs.get(model) ?? 1000) / 1000,
      });
    }
    throw new SpillwayError('SPILLWAY_NO_WORKERS', `no worker serving ${model} could be reached: ${unreachable}`);
  }

  close(): void {
    this.agent.destroy();
  }

  private post(endpoint: string, model: string, body: SyncRunRequest, authorization: string): Promise<Attempt> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(syncRunPath(model), endpoint),
        {
          method: 'POST',
          agent: this.agent,
          headers: { authorization, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (error) => reject(new SpillwayError('SPILLWAY_WORKER_FAILED', describeError(error), { cause: error })));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode === 200) resolve({ kind: 'done', result: JSON.parse(text) as SyncRunResult });
            else if (res.statusCode === 429 || res.statusCode === 503) resolve({ kind: 'busy' });
            else if (res.statusCode === 401) resolve({ kind: 'unauthorized' });
            else reject(new SpillwayError('SPILLWAY_WORKER_FAILED', `the worker answered ${res.statusCode}: ${text.slice(0, 300)}`));
          });
        },
      );
      req.on('error', (error) => {
        // A refused connection ran nothing, so another worker may be tried; anything later is ambiguous.
        if (notListening.has((error as NodeJS.ErrnoException).code ?? '')) resolve({ kind: 'unreachable', reason: `${endpoint}: ${describeError(error)}` });
        else reject(new SpillwayError('SPILLWAY_WORKER_FAILED', `the worker at ${endpoint} failed: ${describeError(error)}`, { cause: error }));
      });
      req.end(payload);
    });
  }
}

const notListening = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);
const key = (endpoint: string, model: string) => `${model} ${endpoint}`;
