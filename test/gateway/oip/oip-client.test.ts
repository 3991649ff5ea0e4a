import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDeployment, type Deployment } from '../../helpers/deployment.js';
import { inBrokerLegSuite, repoRoot, samples } from '../../helpers/paths.js';

/**
 * The protocol as a client Spillway did not write speaks it: tritonclient[http] from PyPI, in the
 * virtual environment `scripts/install --for-tests` makes (scripts/protocol-venv). The gateway
 * and worker run in this process, so the client runs as a child process without blocking them.
 */

function venvPython(): string | undefined {
  try {
    return execFileSync(join(repoRoot, 'scripts', 'protocol-venv'), ['python'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

const python = venvPython();
// In CI the install script has made the venv, so a missing one is a failure there, not a skip.
const skip = inBrokerLegSuite || (python === undefined && process.env['CI'] === undefined);

interface Refusal {
  status: string;
  message: string;
}

interface ClientView {
  live: boolean;
  ready: boolean;
  server: { name: string; version: string; extensions: string[] };
  model_ready: boolean;
  model_ready_v1: boolean;
  metadata: { name: string; versions: string[]; inputs: { name: string; datatype: string; shape: number[] }[] };
  pipeline_metadata: { name: string; platform: string; inputs: unknown[]; outputs: unknown[] };
  label: number[];
  probabilities: number[][];
  response_id: string;
  only_label: string[];
  fp16_label: number[];
  echo: string[];
  bad_shape: Refusal | null;
  binary: Refusal | null;
  unknown_model: Refusal | null;
  unknown_version: Refusal | null;
  unknown_model_ready: boolean;
}

let d: Deployment;
beforeAll(async () => {
  if (!skip) d = await startDeployment();
});
afterAll(async () => d?.close());

describe.skipIf(skip)('tritonclient[http] against a real gateway and worker', () => {
  it('sees a live, ready server, iris metadata, the right class for a known sample, and protocol errors', async () => {
    expect(python, 'no protocol venv: run scripts/install --for-tests (or scripts/protocol-venv install)').toBeDefined();
    const sample = samples('iris').find((s) => s.label === 2)!;
    const { stdout } = await promisify(execFile)(
      python!,
      [join(repoRoot, 'test', 'fixtures', 'oip-client.py'), d.url.replace(/^http:\/\//, ''), JSON.stringify(sample)],
      { timeout: 120_000 },
    );
    const seen = JSON.parse(stdout) as ClientView;
    expect(seen).toMatchObject({ live: true, ready: true, model_ready: true, model_ready_v1: true, unknown_model_ready: false });
    expect(seen.server).toMatchObject({ name: 'spillway', extensions: [] });
    expect(seen.metadata).toMatchObject({ name: 'iris', versions: ['1'], inputs: [{ name: 'float_input', datatype: 'FP32', shape: [-1, 4] }] });
    // A pipeline of JSON handlers: JSON in and out, as one BYTES tensor each.
    expect(seen.pipeline_metadata).toMatchObject({
      name: 'digits-image',
      platform: 'spillway_pipeline',
      inputs: [{ name: 'input', datatype: 'BYTES', shape: [1] }],
      outputs: [{ name: 'output', datatype: 'BYTES', shape: [1] }],
    });
    expect(seen.label).toEqual([sample.label]);
    expect(seen.fp16_label).toEqual([sample.label]);
    expect(seen.probabilities[0]).toHaveLength(3);
    expect(seen.probabilities[0]!.indexOf(Math.max(...seen.probabilities[0]!))).toBe(sample.label);
    expect(seen.response_id).toBe('client-1');
    expect(seen.only_label).toEqual(['label']);
    expect(JSON.parse(seen.echo[0]!)).toEqual({ hello: 'v2' });
    expect(seen.bad_shape).toMatchObject({ status: '400', message: expect.stringContaining('takes shape [-1, 4]') });
    expect(seen.binary).toMatchObject({ status: '400', message: expect.stringContaining('binary_data=False') });
    expect(seen.unknown_model).toMatchObject({ status: '404', message: expect.stringContaining('no-such-model') });
    expect(seen.unknown_version).toMatchObject({ status: '404', message: expect.stringContaining('version "7"') });
  });
});
