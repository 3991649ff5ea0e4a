import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { sendProblem } from '../http/problem.js';
import { SpillwayError, describeError } from '../protocol/errors.js';
import { syncRunRequestSchema, syncRunRoute, type SyncRunRequest, type SyncRunResult } from '../protocol/sync-run.js';
import type { ModelRuntime } from '../runtimes/runtime.js';
import { StepStopwatch, stepTimings } from '../runtimes/step-stopwatch.js';
import { BearerCheck } from './bearer-check.js';
import type { BusyMeter } from './busy-meter.js';

/** A `dispatch: sync` model as the worker runs it: no queue, a fixed number of slots. */
export interface SyncModel {
  readonly name: string;
  readonly runtime: ModelRuntime;
  readonly concurrency: number;
  readonly meter: BusyMeter;
}

/**
 * The worker side of synchronous dispatch. A request runs at once in a free slot or is refused
 * with 429: a synchronous server has nowhere to keep work it cannot start. Only callers with the
 * deployment's shared secret (the gateways) are served: anyone else who can reach the port gets
 * 401 before the body is read.
 */
export class SyncServer {
  private readonly app: FastifyInstance;
  private readonly busy = new Map<string, number>();
  private draining = false;

  constructor(
    private readonly models: ReadonlyMap<string, SyncModel>,
    logger: Logger,
    /** The deployment's sync secret (`worker.sync_secret`), which every call must carry. */
    secret: string,
  ) {
    const bearer = new BearerCheck(secret);
    const loggerInstance: FastifyBaseLogger = logger;
    this.app = Fastify({
      loggerInstance,
      logController: new LogController({ disableRequestLogging: true }),
      // Inputs were validated by the gateway against the model; this limit only stops abuse.
      bodyLimit: 64 * 1024 * 1024,
      return503OnClosing: false,
    });
    this.app.setErrorHandler((error, request, reply) => sendProblem(request, reply, error));
    // onRequest runs before the body is read: a caller without the secret costs no parsing.
    this.app.addHook('onRequest', async (request, reply) => {
      if (bearer.accepts(request.headers.authorization)) return;
      reply.header('www-authenticate', 'Bearer');
      throw new SpillwayError('SPILLWAY_SYNC_UNAUTHORIZED', 'this endpoint needs the sync secret of the deployment, as "Authorization: Bearer <secret>"');
    });
    this.app.post<{ Params: { model: string }; Body: SyncRunRequest }>(
      syncRunRoute,
      { schema: { body: syncRunRequestSchema } },
      async (request) => this.run(request.params.model, request.body),
    );
  }

  get inFlight(): number {
    let n = 0;
    for (const busy of this.busy.values()) n += busy;
    return n;
  }

  /** Listens and returns the URL to advertise in heartbeats. */
  async listen(host: string, port: number, advertise?: string): Promise<string> {
    const url = await this.app.listen({ host, port });
    return advertise ?? url;
  }

  /** Refuses new runs and waits for the running ones to answer. */
  async close(): Promise<void> {
    this.draining = true;
    await this.app.close();
  }

  private async run(name: string, body: SyncRunRequest): Promise<SyncRunResult> {
    const model = this.models.get(name);
    if (model === undefined) throw new SpillwayError('SPILLWAY_MODEL_NOT_FOUND', `this worker does not serve "${name}" synchronously`);
    if (this.draining) throw new SpillwayError('SPILLWAY_SHUTTING_DOWN', 'the worker is draining');
    const busy = this.busy.get(name) ?? 0;
    if (busy >= model.concurrency) throw new SpillwayError('SPILLWAY_SATURATED', `all ${model.concurrency} slots of ${name} are busy`);
    this.busy.set(name, busy + 1);
    const free = model.meter.begin();
    const startedAt = Date.now();
    const timer = new StepStopwatch();
    const t0 = performance.now();
    const timing = () => {
      const ranMs = performance.now() - t0;
      return { started_at: new Date(startedAt).toISOString(), completed_at: new Date().toISOString(), inference_ms: ranMs, timings: stepTimings(undefined, timer.ms, ranMs) };
    };
    try {
      const [outcome] = await model.runtime.predict([body.input], { signal: new AbortController().signal, timer });
      if (outcome?.ok === true) return { ok: true, output: outcome.output, ...timing() };
      const error = outcome?.error.toBody() ?? new SpillwayError('SPILLWAY_MODEL_FAILED', 'no output for this input').toBody();
      return { ok: false, error, ...timing() };
    } catch (error) {
      const failure = error instanceof SpillwayError ? error : new SpillwayError('SPILLWAY_MODEL_FAILED', describeError(error), { cause: error });
      return { ok: false, error: failure.toBody(), ...timing() };
    } finally {
      free();
      this.busy.set(name, (this.busy.get(name) ?? 1) - 1);
    }
  }
}
