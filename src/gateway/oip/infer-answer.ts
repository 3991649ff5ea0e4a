import { errorCatalogue } from '../../protocol/errors.js';
import type { PredictionRecord } from '../../protocol/prediction.js';
import type { InferCall } from './infer-request.js';
import { jsonOutput, onlyVersion } from './signature.js';
import { oipErrorStatus } from './oip-error.js';

/** An HTTP answer on a /v2 route: its status and JSON body. */
export interface OipAnswer {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
}

interface OutputTensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
  readonly data: readonly unknown[];
}

/**
 * The v2 answer for a prediction record, whatever way the submit path ended: a finished record
 * is its outputs (200) or an error; one still queued or running is a 202 whose parameters say
 * where to poll (docs/oip-v2.md, "Waiting and the async extensions").
 */
export function inferAnswer(call: InferCall, record: PredictionRecord): OipAnswer {
  const head = { model_name: call.signature.name, model_version: onlyVersion, id: call.requestId ?? record.id };
  const parameters = { spillway_prediction_id: record.id, spillway_status: record.status };
  switch (record.status) {
    case 'succeeded':
      return { status: 200, body: { ...head, parameters, outputs: pick(outputsOf(record.output), call.requested) } };
    case 'queued':
    case 'running': {
      const pending = { ...head, parameters: { ...parameters, spillway_location: `/v1/predictions/${record.id}` } };
      if (call.async) return { status: 202, body: pending };
      // A client that waited and got no result is told so in the field every v2 client reads.
      const error = `prediction ${record.id} is still ${record.status} after the longest wait the gateway holds; it stays queued: poll /v1/predictions/${record.id}`;
      return { status: 202, body: { ...pending, error } };
    }
    case 'expired':
      return failure(parameters, 504, 'SPILLWAY_DEADLINE_EXCEEDED', `prediction ${record.id} expired: its deadline passed before a worker started it`);
    case 'canceled':
      return { status: 409, body: { error: `prediction ${record.id} was canceled`, parameters } };
    case 'failed': {
      const code = record.error?.code ?? 'SPILLWAY_MODEL_FAILED';
      const status = oipErrorStatus(errorCatalogue[code].status);
      // The gateway did its part; a 5xx from the model behind it is a bad gateway, not a server bug.
      return failure(parameters, status === 500 ? 502 : status, code, `prediction ${record.id} failed: ${record.error?.message ?? 'no reason given'}`);
    }
  }
}

function failure(parameters: Readonly<Record<string, string>>, status: number, code: string, error: string): OipAnswer {
  return { status, body: { error, code, parameters } };
}

const isTensor = (value: unknown): value is OutputTensor => {
  const t = value as Partial<OutputTensor> | null;
  return typeof t === 'object' && t !== null && typeof t.name === 'string' && typeof t.datatype === 'string' && Array.isArray(t.shape) && Array.isArray(t.data);
};

/**
 * A model's output as tensors: ONNX models given tensors answer `{"outputs": [...]}`, and so may
 * a handler; any other output is JSON, carried as the one element of the BYTES tensor `output`.
 */
function outputsOf(output: unknown): readonly OutputTensor[] {
  const outputs = (output as { outputs?: unknown } | null)?.outputs;
  if (Array.isArray(outputs) && outputs.length > 0 && outputs.every(isTensor)) return outputs;
  return [{ ...jsonOutput, data: [JSON.stringify(output ?? null)] }];
}

function pick(outputs: readonly OutputTensor[], requested: readonly string[] | undefined): readonly OutputTensor[] {
  return requested === undefined ? outputs : outputs.filter((t) => requested.includes(t.name));
}
