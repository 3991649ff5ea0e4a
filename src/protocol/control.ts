import type { OutgoingMessage } from './message.js';
import { envelopeVersion, headerNames } from './envelope.js';

/**
 * A client canceled a prediction; travels on `<prefix>.control` (docs/messages.md). Workers keep
 * the ids they have heard of, so a queued request is never started and a running one is aborted.
 */
export interface CancelNotice {
  readonly v: typeof envelopeVersion;
  readonly type: 'cancel';
  readonly id: string;
  readonly model: string;
  readonly canceled_at: string;
}

/**
 * How long the control topic keeps a notice. A worker started later reads the topic from its
 * start, so this bounds how long a request may sit queued and still be known as canceled; it
 * matches the store's default retention, past which the prediction is forgotten anyway.
 */
export const controlRetentionMs = 24 * 3600_000;

export function cancelMessage(notice: Omit<CancelNotice, 'v' | 'type'>): OutgoingMessage {
  const value: CancelNotice = { v: envelopeVersion, type: 'cancel', ...notice };
  return { key: notice.id, headers: { [headerNames.id]: notice.id }, value: JSON.stringify(value) };
}

/** Reads a notice from the control topic; undefined for anything else (other notice types may come). */
export function decodeCancelNotice(value: string): CancelNotice | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const n = parsed as Partial<CancelNotice>;
  if (n.type !== 'cancel' || typeof n.id !== 'string' || typeof n.model !== 'string' || typeof n.canceled_at !== 'string') return undefined;
  return { v: envelopeVersion, type: 'cancel', id: n.id, model: n.model, canceled_at: n.canceled_at };
}
