import { Admin } from '@platformatic/kafka';

/**
 * What a `spillway serve --broker kafka://... --prefix P` leaves on the cluster: the topics
 * `P.*`, and the consumer groups `<group>.P.*` (Spillway names each Kafka group after its own
 * group and the topic). A fresh prefix per server start gives a benchmark fresh topics; this
 * removes them afterwards. Best effort: a failure is reported, never thrown.
 */
export async function deletePrefixes(bootstrap: readonly string[], prefixes: readonly string[]): Promise<{ topics: number; groups: number; errors: string[] }> {
  const out = { topics: 0, groups: 0, errors: [] as string[] };
  if (prefixes.length === 0) return out;
  const admin = new Admin({ clientId: 'spillway-bench-cleanup', bootstrapBrokers: [...bootstrap] });
  try {
    // Groups first: a topic's committed offsets go with its group.
    const groups = [...(await admin.listGroups()).keys()].filter((g) => prefixes.some((p) => g.includes(`.${p}.`)));
    for (const group of groups) {
      try {
        await admin.deleteGroups({ groups: [group] });
        out.groups += 1;
      } catch (error) {
        out.errors.push(`group ${group}: ${describeError(error)}`);
      }
    }
    const topics = (await admin.listTopics()).filter((t) => prefixes.some((p) => t.startsWith(`${p}.`)));
    if (topics.length > 0) {
      await admin.deleteTopics({ topics });
      out.topics = topics.length;
    }
  } catch (error) {
    out.errors.push(describeError(error));
  } finally {
    await admin.close().catch(() => undefined);
  }
  return out;
}

/** How many topics the cluster holds (a busy shared broker is worth knowing about); NaN on failure. */
export async function topicCount(bootstrap: readonly string[]): Promise<number> {
  const admin = new Admin({ clientId: 'spillway-bench-info', bootstrapBrokers: [...bootstrap] });
  try {
    return (await admin.listTopics()).length;
  } catch {
    return Number.NaN;
  } finally {
    await admin.close().catch(() => undefined);
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
