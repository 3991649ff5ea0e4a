import type { Broker } from '../../src/brokers/broker.js';
import type { PredictionRecord } from '../../src/protocol/prediction.js';

/** Every status the response stream carried for `id`, in order, read by a group of our own. */
export async function statusesOnStream(broker: Broker, topic: string, id: string): Promise<string[]> {
  const sub = await broker.subscribe({ topic, group: `probe-${Math.random()}`, from: 'earliest', ephemeral: true });
  const seen: string[] = [];
  for (;;) {
    const batch = await sub.take(1000, { timeoutMs: 300 });
    if (batch.length === 0) break;
    for (const d of batch) {
      const r = JSON.parse(d.value) as PredictionRecord;
      if (r.id === id) seen.push(r.status);
      await d.ack();
    }
  }
  await sub.close();
  return seen;
}
