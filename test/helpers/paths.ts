import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const modelsDir = fileURLToPath(new URL('../../models', import.meta.url));
export const cliPath = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface Sample {
  readonly input: number[];
  readonly label: number;
  readonly label_name: string;
}

export function samples(model: 'iris' | 'digits'): Sample[] {
  return JSON.parse(readFileSync(`${modelsDir}/${model}/samples.json`, 'utf8')) as Sample[];
}

/** The brokers the end-to-end suites run on; Kafka is the one scripts/kafka started. */
export const testBrokers = [
  { name: 'embedded', url: 'embedded' },
  { name: 'kafka', url: process.env['SPILLWAY_TEST_KAFKA'] ?? 'kafka://127.0.0.1:9092' },
] as const;
