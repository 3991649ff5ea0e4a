import { inspect } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  buildPayload,
  generateSecret,
  isCallbackEvent,
  parseSecret,
  parseSigningSecrets,
  signWebhook,
  type SignedWebhook,
} from '../../src/callbacks/signing.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { SpillwayError } from '../../src/protocol/errors.js';

// Every signature here is checked by the independent `standardwebhooks` package, never by our code.

const record: PredictionRecord = {
  id: 'pred_01',
  model: 'iris',
  status: 'succeeded',
  output: { label: 'setosa', scores: [0.97, 0.02, 0.01] },
  metadata: { note: 'ünïcode ✓ and "quotes"' },
  created_at: '2026-11-28T12:00:00.000Z',
  completed_at: '2026-11-28T12:00:00.250Z',
  attempts: 1,
  metrics: { queue_ms: 200, inference_ms: 50, total_ms: 250 },
};

function headers(w: SignedWebhook): Record<string, string> {
  return { ...w.headers };
}

describe('signing (Standard Webhooks, verified by the standardwebhooks package)', () => {
  const a = generateSecret();
  const b = generateSecret();

  it('a delivery signed with one secret verifies, and the payload is the prediction event', () => {
    const body = buildPayload('prediction.completed', record, new Date('2026-11-28T12:00:00.250Z'));
    const signed = signWebhook(body, [parseSecret(a)], { id: 'msg_fixed' });
    expect(signed.body).toBe(body);
    expect(signed.headers['webhook-id']).toBe('msg_fixed');
    expect(signed.headers['webhook-timestamp']).toMatch(/^\d+$/);
    expect(Math.abs(Number(signed.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(5);
    expect(signed.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);

    const verified = new Webhook(a).verify(signed.body, headers(signed));
    expect(verified).toEqual({ type: 'prediction.completed', timestamp: '2026-11-28T12:00:00.250Z', data: record });
  });

  it('with two secrets (rotation) each signature verifies alone with its own secret', () => {
    const signed = signWebhook(buildPayload('prediction.running', record), [parseSecret(a), parseSecret(b)]);
    const sigs = signed.headers['webhook-signature'].split(' ');
    expect(sigs).toHaveLength(2);
    expect(sigs[0]).not.toBe(sigs[1]);
    // The whole header passes for a receiver holding either secret.
    expect(() => new Webhook(a).verify(signed.body, headers(signed))).not.toThrow();
    expect(() => new Webhook(b).verify(signed.body, headers(signed))).not.toThrow();
    // Each signature on its own verifies with its own secret, and not with the other one.
    const only = (sig: string) => ({ ...headers(signed), 'webhook-signature': sig });
    expect(() => new Webhook(a).verify(signed.body, only(sigs[0]!))).not.toThrow();
    expect(() => new Webhook(b).verify(signed.body, only(sigs[1]!))).not.toThrow();
    expect(() => new Webhook(a).verify(signed.body, only(sigs[1]!))).toThrow();
    expect(() => new Webhook(b).verify(signed.body, only(sigs[0]!))).toThrow();
  });

  it('a tampered body, a changed id or timestamp, and a wrong secret all fail verification', () => {
    const signed = signWebhook(buildPayload('prediction.completed', record), [parseSecret(a)]);
    const hook = new Webhook(a);
    expect(() => hook.verify(signed.body.replace('setosa', 'virginica'), headers(signed))).toThrow();
    expect(() => hook.verify(signed.body, { ...headers(signed), 'webhook-id': 'msg_other' })).toThrow();
    const ts = String(Number(signed.headers['webhook-timestamp']) - 1);
    expect(() => hook.verify(signed.body, { ...headers(signed), 'webhook-timestamp': ts })).toThrow();
    expect(() => new Webhook(generateSecret()).verify(signed.body, headers(signed))).toThrow();
  });

  it('the header timestamp is the signing time, so an old signature is refused as a replay', () => {
    const signed = signWebhook('{}', [parseSecret(a)], { now: new Date(Date.now() - 10 * 60_000) });
    expect(() => new Webhook(a).verify(signed.body, headers(signed))).toThrow(/timestamp/i);
  });

  it('gives each event its own id unless one is passed (retries keep theirs)', () => {
    const one = signWebhook('{}', [parseSecret(a)]);
    const two = signWebhook('{}', [parseSecret(a)]);
    expect(one.id).toMatch(/^msg_/);
    expect(one.id).not.toBe(two.id);
    expect(signWebhook('{}', [parseSecret(a)], { id: one.id }).headers['webhook-id']).toBe(one.id);
  });

  it('refuses to sign without a secret', () => {
    expect(() => signWebhook('{}', [])).toThrow(SpillwayError);
  });

  it('knows the two event names', () => {
    expect(isCallbackEvent('prediction.completed')).toBe(true);
    expect(isCallbackEvent('prediction.running')).toBe(true);
    expect(isCallbackEvent('prediction.deleted')).toBe(false);
  });
});

describe('signing secrets', () => {
  it('generates whsec_ secrets of 32 random bytes', () => {
    const s = generateSecret();
    expect(s).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(parseSecret(s).size).toBe(32);
    expect(generateSecret()).not.toBe(s);
  });

  it.each([
    ['no prefix', Buffer.alloc(32, 1).toString('base64'), 'must start with whsec_'],
    ['not base64', 'whsec_not*base64!', 'standard base64'],
    ['unpadded', `whsec_${Buffer.alloc(32, 1).toString('base64').replace(/=+$/, '')}`, 'standard base64'],
    ['too short', `whsec_${Buffer.alloc(16, 1).toString('base64')}`, 'this one has 16'],
    ['too long', `whsec_${Buffer.alloc(65, 1).toString('base64')}`, 'this one has 65'],
  ])('refuses a secret with %s', (_name, text, why) => {
    expect(() => parseSecret(text)).toThrow(why);
    // The message must not echo the secret back into logs.
    try {
      parseSecret(text);
    } catch (e) {
      expect((e as Error).message).not.toContain(text.slice(6, 20));
    }
  });

  it('never shows the key when a parsed secret is logged or serialised', () => {
    const text = generateSecret();
    const secret = parseSecret(text);
    const encoded = text.slice('whsec_'.length);
    const raw = Buffer.from(encoded, 'base64');
    // util.inspect prints a Buffer as spaced hex bytes.
    const spacedHex = raw.subarray(0, 8).toString('hex').replace(/(..)(?!$)/g, '$1 ');
    for (const shown of [JSON.stringify(secret), inspect(secret, { showHidden: true, depth: 5 })]) {
      expect(shown).not.toContain(encoded);
      expect(shown).not.toContain(spacedHex);
    }
    expect(JSON.stringify(secret)).toContain(secret.fingerprint);
  });

  it('reads callbacks.secrets, or SPILLWAY_CALLBACK_SECRET in its place, and reports every problem', () => {
    const a = generateSecret();
    const b = generateSecret();
    const fp = (...texts: string[]) => texts.map((t) => parseSecret(t).fingerprint);
    const parsed = (sources: Parameters<typeof parseSigningSecrets>[0]) =>
      parseSigningSecrets(sources).map((s) => s.fingerprint);
    expect(parsed({ secrets: [a, b] })).toEqual(fp(a, b));
    expect(parsed({ secrets: [a], env: `${b} ${a}` })).toEqual(fp(b, a));
    expect(parsed({ secrets: [a], env: '' })).toEqual(fp(a));
    let error: unknown;
    try {
      parseSigningSecrets({ secrets: [a, 'nope', 7] });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'SPILLWAY_INVALID_CONFIG' });
    expect((error as SpillwayError).details.map((d) => d.pointer)).toEqual(['callbacks.secrets[1]', 'callbacks.secrets[2]']);
  });

  it('a secret made elsewhere (the standardwebhooks test vector) signs what its library expects', () => {
    // From the Standard Webhooks reference tests: this secret, id, timestamp and body.
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = '{"test": 2432232314}';
    const signed = signWebhook(body, [parseSecret(secret)], { id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', now: new Date() });
    expect(() => new Webhook(secret).verify(body, headers(signed))).not.toThrow();
    const sig = new Webhook(secret).sign(
      signed.id,
      new Date(Number(signed.headers['webhook-timestamp']) * 1000),
      body,
    );
    expect(signed.headers['webhook-signature']).toBe(sig);
  });
});
