import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { callbackSettings, validateCallback } from '../../src/callbacks/callback-settings.js';
import { parseEgressPolicy } from '../../src/callbacks/egress-guard.js';
import { parseSigningSecrets } from '../../src/callbacks/signing.js';
import { SpillwayError } from '../../src/protocol/errors.js';
import { generateSecret } from '../../src/callbacks/signing.js';
import { loadConfig } from '../../src/config/load-config.js';

// An empty folder, so no spillway.yaml is picked up.
const cwd = mkdtempSync(join(tmpdir(), 'spillway-cb-'));

describe('callbackSettings', () => {
  it('reads SPILLWAY_CALLBACKS_ALLOW through the config and SPILLWAY_CALLBACK_SECRET beside it', () => {
    const env = { SPILLWAY_CALLBACKS_ALLOW: '127.0.0.1, hooks.internal', SPILLWAY_CALLBACK_SECRET: `${generateSecret()} ${generateSecret()}` };
    const settings = callbackSettings(loadConfig({ env, cwd }), env);
    expect(settings.policy.entries).toEqual(['127.0.0.1', 'hooks.internal']);
    expect(settings.secrets).toHaveLength(2);
    expect(settings.maxAttempts).toBe(8);
  });

  it('refuses a bad secret at start', () => {
    const config = loadConfig({ env: {}, cwd });
    expect(() => callbackSettings(config, { SPILLWAY_CALLBACK_SECRET: 'nope' })).toThrow(/invalid callback secret/);
  });
});

describe('validateCallback', () => {
  const settings = { policy: parseEgressPolicy({ allow: [] }), secrets: parseSigningSecrets({ secrets: [generateSecret()] }) };
  const refusal = async (url: string) => {
    const error = await validateCallback({ url }, settings).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SpillwayError);
    return error as SpillwayError;
  };

  it('a host that does not resolve is refused as retryable, as docs/errors.md says: DNS may come back', async () => {
    // .invalid never resolves (RFC 6761).
    const error = await refusal('https://hooks.spillway.invalid/done');
    expect(error.code).toBe('SPILLWAY_CALLBACK_REFUSED');
    expect(error.retryable).toBe(true);
  });

  it('a refused address stays refused: not retryable', async () => {
    const error = await refusal('https://127.0.0.1/done');
    expect(error.code).toBe('SPILLWAY_CALLBACK_REFUSED');
    expect(error.retryable).toBe(false);
  });
});
