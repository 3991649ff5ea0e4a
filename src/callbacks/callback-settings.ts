import type { SpillwayConfig } from '../config/schema.js';
import { callbackEventNames, type CallbackEventName, type CallbackRequest } from '../protocol/prediction.js';
import { SpillwayError } from '../protocol/errors.js';
import { checkCallbackUrl, parseEgressPolicy, type EgressPolicy } from './egress-guard.js';
import { parseSigningSecrets, type SigningSecret } from './signing.js';

/** Everything callbacks need from the config, parsed once. */
export interface CallbackSettings {
  readonly policy: EgressPolicy;
  readonly secrets: readonly SigningSecret[];
  /** Tenants that sign their callbacks with secrets of their own (`tenants.<name>.callback_secrets`). */
  readonly tenantSecrets: ReadonlyMap<string, readonly SigningSecret[]>;
  readonly maxAttempts: number;
  readonly backoffBaseMs: number;
  readonly backoffCapMs: number;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
}

/**
 * The config loader maps `callbacks.secrets` to SPILLWAY_CALLBACKS_SECRETS; the documented name
 * is SPILLWAY_CALLBACK_SECRET, so it is read here (it replaces the file's list when set).
 */
export function callbackSettings(config: SpillwayConfig, env: NodeJS.ProcessEnv = process.env): CallbackSettings {
  const c = config.callbacks;
  const allowEnv = env['SPILLWAY_CALLBACKS_ALLOW'];
  const secretEnv = env['SPILLWAY_CALLBACK_SECRET'];
  return {
    policy: parseEgressPolicy({ allow: c.allow, ...(allowEnv === undefined ? {} : { env: allowEnv }) }),
    secrets: parseSigningSecrets({ secrets: c.secrets, ...(secretEnv === undefined ? {} : { env: secretEnv }) }),
    tenantSecrets: new Map(
      Object.entries(config.tenants).flatMap(([tenant, t]) =>
        t.callback_secrets === undefined ? [] : [[tenant, parseSigningSecrets({ secrets: t.callback_secrets, where: `tenants.${tenant}.callback_secrets` })] as const],
      ),
    ),
    maxAttempts: c.max_attempts,
    backoffBaseMs: c.backoff_base_ms,
    backoffCapMs: c.backoff_cap_ms,
    connectTimeoutMs: c.connect_timeout_ms,
    responseTimeoutMs: c.response_timeout_ms,
  };
}

/** The secrets that sign a callback of `tenant`'s: its own, or the deployment's. */
export function secretsFor(settings: Pick<CallbackSettings, 'secrets' | 'tenantSecrets'>, tenant: string | undefined): readonly SigningSecret[] {
  return (tenant === undefined ? undefined : settings.tenantSecrets.get(tenant)) ?? settings.secrets;
}

/**
 * Checks a submitted callback before anything is queued: a usable URL, known events, a
 * destination the egress policy allows, and a secret to sign with (an unsigned webhook could
 * not be told from a forgery, so none is sent).
 */
export async function validateCallback(
  body: { readonly url: string; readonly events?: readonly string[] | undefined },
  settings: Pick<CallbackSettings, 'policy' | 'secrets'> | undefined,
): Promise<CallbackRequest> {
  const events = body.events ?? ['completed'];
  const unknown = events.filter((e) => !(callbackEventNames as readonly string[]).includes(e));
  if (unknown.length > 0 || events.length === 0) {
    throw new SpillwayError(
      'SPILLWAY_INVALID_CALLBACK',
      events.length === 0 ? 'callback.events must not be empty' : `unknown callback event ${JSON.stringify(unknown[0])}; use running or completed`,
      { details: [{ pointer: '/callback/events', message: `allowed: ${callbackEventNames.join(', ')}` }] },
    );
  }
  if (settings === undefined || settings.secrets.length === 0) {
    throw new SpillwayError('SPILLWAY_INVALID_CALLBACK', 'callbacks are not enabled here: no signing secret is configured (callbacks.secrets)');
  }
  const decision = await checkCallbackUrl(body.url, settings.policy);
  if (!decision.ok) {
    throw new SpillwayError(decision.code, `callback.url: ${decision.reason}`, {
      // A name that does not resolve now may resolve later; a refused address stays refused.
      retryable: decision.retryable,
      details: [{ pointer: '/callback/url', message: decision.reason }],
    });
  }
  return { url: decision.url, events: [...new Set(events)] as CallbackEventName[] };
}
