import { configLeaves, type ConfigLeafType } from './schema.js';

/** A CLI flag for one setting; the CLI turns these into parseArgs options and --help lines. */
export interface ConfigFlag {
  /** Without the leading `--`. */
  readonly flag: string;
  /** Dotted path of the setting it sets. */
  readonly path: string;
  /**
   * How loadConfig() coerces the value. Only `boolean` flags take no value; every other type
   * is given to parseArgs as a string, and `array` is comma-separated.
   */
  readonly type: ConfigLeafType;
  readonly description: string;
  /** The environment variable for the same setting, for help text. */
  readonly env: string;
  readonly default?: string | number | boolean;
  readonly choices?: readonly string[];
}

/** Flags in schema order, which is the order --help should list them. */
export function configFlags(): ConfigFlag[] {
  return configLeaves().flatMap((leaf) =>
    leaf.flag === undefined
      ? []
      : [
          {
            flag: leaf.flag,
            path: leaf.path,
            type: leaf.type,
            description: leaf.description,
            env: leaf.env,
            ...(leaf.default === undefined ? {} : { default: leaf.default }),
            ...(leaf.choices === undefined ? {} : { choices: leaf.choices }),
          },
        ],
  );
}
