import { parseArgs } from 'node:util';

export interface FlagSpec {
  readonly description: string;
  readonly default: string;
}

/**
 * `--name value` flags with defaults and a generated --help; values come back as strings for
 * the caller to convert with {@link num} or {@link numList}.
 */
export function parseFlags<const K extends string>(
  usage: string,
  specs: Record<K, FlagSpec>,
  argv: readonly string[] = process.argv.slice(2),
): Record<K, string> {
  const options: Record<string, { type: 'string' } | { type: 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const name of Object.keys(specs)) options[name] = { type: 'string' };
  const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  if (values['help'] === true) {
    const lines = Object.entries<FlagSpec>(specs).map(
      ([name, s]) => `  --${`${name} <v>`.padEnd(22)} ${s.description}${s.default === '' ? '' : ` (default: ${s.default})`}`,
    );
    process.stdout.write(`${usage}\n\nOptions:\n${lines.join('\n')}\n  --${'help'.padEnd(22)} show this help\n`);
    process.exit(0);
  }
  const out = {} as Record<K, string>;
  for (const name of Object.keys(specs) as K[]) {
    const value = values[name];
    out[name] = typeof value === 'string' ? value : specs[name].default;
  }
  return out;
}

export function num(flag: string, value: string, { min = -Infinity, integer = false } = {}): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new Error(`--${flag}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got "${value}"`);
  }
  return n;
}

export function numList(flag: string, value: string, options: { min?: number; integer?: boolean } = {}): number[] {
  return value.split(',').map((v) => num(flag, v, options));
}
