import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { callbackSettings } from '../../src/callbacks/callback-settings.js';
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
