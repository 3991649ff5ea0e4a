import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateSecret } from '../../src/callbacks/signing.js';
import { request } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { inBrokerLegSuite } from '../helpers/paths.js';
import { processesOfTest } from '../helpers/processes.js';

interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
}
interface Received extends OtlpSpan {
  readonly role: string;
}

/** An OTLP/HTTP receiver in this process: what the exporters post, as JSON. */
async function otlpReceiver(): Promise<{ url: string; spans: Received[]; server: Server }> {
  const spans: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const parsed = JSON.parse(body) as {
        resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const rs of parsed.resourceSpans) {
        const role = rs.resource.attributes.find((a) => a.key === 'spillway.role')?.value.stringValue ?? '';
        for (const ss of rs.scopeSpans) for (const span of ss.spans) spans.push({ ...span, role });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, server };
}

const processes = processesOfTest({
  SPILLWAY_WORKER_HEARTBEAT_MS: '200',
  SPILLWAY_CALLBACKS_ALLOW: '127.0.0.1',
  SPILLWAY_CALLBACK_SECRET: generateSecret(),
});
afterEach(() => processes.killAll());

describe.skipIf(inBrokerLegSuite)('tracing', () => {
  it("follows one request across the gateway and worker processes, every span below the caller's", async () => {
    const receiver = await otlpReceiver();
    try {
      const data = mkdtempSync(join(tmpdir(), 'spillway-trace-'));
      const models = modelRepo();
      const common = ['--data', data, '--models', models, '--otlp-endpoint', receiver.url];
      const gateway = await processes.start(['gateway', ...common, '--port', '0']);
      const worker = await processes.start(['worker', ...common]);
      const traceId = randomBytes(16).toString('hex');
      const callerSpan = randomBytes(8).toString('hex');
      const res = await request<{ id: string; status: string }>(`${gateway.url}/v1/models/echo/predictions`, {
        body: { input: { traced: true } },
        headers: { traceparent: `00-${traceId}-${callerSpan}-01`, prefer: 'wait=30' },
      });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('succeeded');
      // A clean stop sends what each process still buffers.
      expect(await worker.kill('SIGTERM')).toBe(0);
      expect(await gateway.kill('SIGTERM')).toBe(0);

      const ours = receiver.spans.filter((s) => s.traceId === traceId);
      const named = (name: string) => {
        const found = ours.filter((s) => s.name === name);
        expect(found, `${name} in ${ours.map((s) => s.name).join(', ')}`).toHaveLength(1);
        return found[0]!;
      };
      const receive = named('POST /v1/models/{model}/predictions');
      const publish = named('publish echo');
      const answer = named('answer');
      const queue = named('queue echo');
      const run = named('run echo');
      const result = named('publish spillway.responses');
      expect(receive.parentSpanId).toBe(callerSpan);
      expect([publish.parentSpanId, answer.parentSpanId]).toEqual([receive.spanId, receive.spanId]);
      expect([queue.parentSpanId, run.parentSpanId]).toEqual([publish.spanId, publish.spanId]);
      expect(result.parentSpanId).toBe(run.spanId);
      expect([receive, publish, answer].map((s) => s.role)).toEqual(['gateway', 'gateway', 'gateway']);
      expect([queue, run, result].map((s) => s.role)).toEqual(['worker', 'worker', 'worker']);
      // Queued from the publish until the run began.
      expect(BigInt(queue.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(run.startTimeUnixNano));
    } finally {
      receiver.server.close();
    }
  });

  it("a callback's delivery joins its request's trace, below the run, and the receiver gets its traceparent", async () => {
    const receiver = await otlpReceiver();
    const hooks: string[] = [];
    const hookServer = createServer((req, res) => {
      hooks.push(String(req.headers['traceparent']));
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    hookServer.listen(0, '127.0.0.1');
    await once(hookServer, 'listening');
    try {
      const data = mkdtempSync(join(tmpdir(), 'spillway-trace-'));
      const common = ['--data', data, '--models', modelRepo(), '--otlp-endpoint', receiver.url];
      const gateway = await processes.start(['gateway', ...common, '--port', '0']);
      const worker = await processes.start(['worker', ...common]);
      const dispatcher = await processes.start(['dispatcher', ...common]);
      const hook = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
      const res = await request<{ id: string }>(`${gateway.url}/v1/models/echo/predictions`, { body: { input: 1, callback: { url: hook, events: ['completed'] } } });
      expect(res.status).toBe(202);
      await vi.waitFor(() => expect(hooks).toHaveLength(1), { timeout: 30_000, interval: 50 });
      for (const p of [dispatcher, worker, gateway]) expect(await p.kill('SIGTERM')).toBe(0);

      const run = receiver.spans.find((s) => s.name === 'run echo');
      const delivery = receiver.spans.find((s) => s.name === 'callback completed');
      expect(run).toBeDefined();
      expect(delivery).toMatchObject({ traceId: run!.traceId, parentSpanId: run!.spanId, role: 'dispatcher' });
      expect(hooks[0]).toMatch(new RegExp(`^00-${run!.traceId}-${delivery!.spanId}-0[01]$`));
    } finally {
      receiver.server.close();
      hookServer.close();
    }
  });

  it("chains a pipeline's steps: each step's spans hang below the run of the step before", async () => {
    const receiver = await otlpReceiver();
    try {
      const models = modelRepo({ fixtures: ['words', 'count'] });
      mkdirSync(join(models, 'wordcount'));
      writeFileSync(join(models, 'wordcount', 'pipeline.yaml'), 'steps:\n  - model: words\n  - model: count\n');
      const data = mkdtempSync(join(tmpdir(), 'spillway-trace-'));
      const serve = await processes.start(['serve', '--data', data, '--models', models, '--port', '0', '--otlp-endpoint', receiver.url]);
      const res = await request<{ status: string }>(`${serve.url}/v1/models/wordcount/predictions`, { body: { input: { text: 'one two' } }, headers: { prefer: 'wait=30' } });
      expect(res.body.status).toBe('succeeded');
      expect(await serve.kill('SIGTERM')).toBe(0);
      const named = (name: string) => receiver.spans.find((s) => s.name === name);
      const [publish, runWords, queueCount, runCount] = ['publish wordcount', 'run words', 'queue count', 'run count'].map(named);
      expect(runWords?.parentSpanId).toBe(publish?.spanId);
      expect([queueCount?.parentSpanId, runCount?.parentSpanId]).toEqual([runWords?.spanId, runWords?.spanId]);
      expect(new Set([publish, runWords, queueCount, runCount].map((s) => s?.traceId)).size).toBe(1);
    } finally {
      receiver.server.close();
    }
  });
});
