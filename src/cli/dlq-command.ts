import type { SpillwayConfig } from '../config/schema.js';
import { listDeadLetters, replayDeadLetters, type ListedLetter } from '../dlq/dead-letters.js';
import { topicsFor } from '../protocol/topics.js';
import { pino } from 'pino';
import { openConfiguredBroker, openConfiguredStore } from './services.js';

export interface DlqOptions {
  readonly action: 'list' | 'replay';
  readonly all: boolean;
  readonly ids: readonly string[];
  readonly json: boolean;
}

/** `spillway dlq list|replay`: what failed for good, and sending it back once its cause is fixed. */
export async function dlq(config: SpillwayConfig, o: DlqOptions): Promise<void> {
  // Logs go to stderr: stdout is the answer (and may be JSON for a script).
  const logger = pino({ level: config.log_level === 'info' ? 'warn' : config.log_level }, pino.destination(2));
  const broker = await openConfiguredBroker(config, logger);
  const topics = topicsFor(config.prefix);
  try {
    if (o.action === 'list') {
      const letters = await listDeadLetters(broker, topics);
      process.stdout.write(o.json ? `${JSON.stringify(letters.map(toJson), null, 2)}\n` : table(letters));
      return;
    }
    if (!o.all && o.ids.length === 0) throw new Error('dlq replay: say which letters: --id <id>[,<id>…] or --all');
    const wanted = new Set(o.ids);
    const store = await openConfiguredStore(config, logger);
    let result;
    try {
      result = await replayDeadLetters(broker, topics, (l) => o.all || (l.id !== undefined && wanted.has(l.id)), (webhookId) => store.resendCallback(webhookId));
    } finally {
      await store.close();
    }
    const { replayed, skipped } = result;
    if (o.json) process.stdout.write(`${JSON.stringify({ replayed: replayed.map(toJson), skipped: skipped.map(toJson) }, null, 2)}\n`);
    else {
      process.stdout.write(`replayed ${replayed.length} letter(s)${replayed.length > 0 ? `: ${replayed.map((l) => l.id).join(', ')}` : ''}\n`);
      for (const l of skipped) process.stdout.write(`skipped ${l.id ?? l.key}: ${l.replayed ? 'already replayed' : (l.unreplayable ?? '')}\n`);
    }
    const missing = o.ids.filter((id) => ![...replayed, ...skipped].some((l) => l.id === id));
    if (missing.length > 0) throw new Error(`no dead letter for ${missing.join(', ')}`);
  } finally {
    await broker.close();
  }
}

function toJson(l: ListedLetter) {
  return {
    kind: l.kind,
    id: l.id ?? null,
    model: l.model ?? null,
    letter: l.key,
    attempts: l.attempts,
    reason: l.reason,
    failed_at: l.failed_at,
    replayed: l.replayed,
    ...(l.webhook === undefined ? {} : { webhook_id: l.webhook.webhook_id, url: l.webhook.url }),
    ...(l.unreplayable === undefined ? {} : { unreplayable: l.unreplayable }),
  };
}

function table(letters: readonly ListedLetter[]): string {
  if (letters.length === 0) return 'no dead letters\n';
  const rows = letters.map((l) => [
    l.failed_at,
    l.kind,
    l.model ?? '-',
    l.id ?? '-',
    String(l.attempts),
    l.replayed ? 'replayed' : l.unreplayable === undefined ? 'waiting' : 'not a request',
    `${l.reason.code}: ${l.reason.message}`,
  ]);
  const header = ['failed at', 'kind', 'model', 'id', 'attempts', 'state', 'reason'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
