import { readMixFile, type MixEntry } from './mix-file.js';
import {
  benchFlags,
  BenchUsageError,
  combineOptions,
  resolveLoadOptions,
  resolveSharedOptions,
  within,
  type BenchOptions,
  type Env,
  type FlagValues,
  type SharedOptions,
} from './options.js';

export interface MixTenant {
  readonly name: string;
  readonly options: BenchOptions;
}

/** A run of several tenants' open loops at once (--mix): what they share, and each one's options. */
export interface MixOptions {
  readonly file: string;
  readonly shared: SharedOptions;
  /** In the file's order. */
  readonly tenants: readonly MixTenant[];
}

const profileOf = (flags: FlagValues): string => {
  const profile = flags['profile'];
  return typeof profile === 'string' ? profile : 'steady';
};

const appliesTo = (flag: string, profile: string): boolean => {
  const profiles: readonly string[] | undefined = benchFlags[flag]?.profiles;
  return profiles?.includes(profile) ?? true;
};

/**
 * Resolves `--mix FILE` and the command line into one BenchOptions per tenant. The command
 * line's per-tenant flags are defaults for the entries that do not set them (a profile's flag
 * only for entries of a profile it applies to); a tenant's bad value gets the command line's
 * message, prefixed with the file and the tenant.
 */
export function resolveMix(cli: FlagValues, env: Env = process.env): MixOptions {
  const file = cli['mix'];
  if (typeof file !== 'string') throw new BenchUsageError('--mix needs a file');
  const shared = resolveSharedOptions(cli);
  const entries = readMixFile(file, env);
  refuseUnusedFlags(cli, entries, file);
  const tenants = entries.map((entry, k) => {
    const flags = tenantFlags(cli, entry, k);
    const load = within(`--mix ${file}: tenant "${entry.name}"`, () => resolveLoadOptions(flags, env));
    return { name: entry.name, options: combineOptions(shared, load, { tenant: entry.name, mix: file }) };
  });
  return { file, shared, tenants };
}

/** The flags one tenant runs with: its entry's over the command line's, where they apply. */
function tenantFlags(cli: FlagValues, entry: MixEntry, index: number): FlagValues {
  const profile = entry.flags['profile'] ?? profileOf(cli);
  const flags: Record<string, string | boolean | undefined> = {};
  for (const [flag, value] of Object.entries(cli)) {
    if (benchFlags[flag]?.tenant === true && !appliesTo(flag, profile)) continue;
    flags[flag] = value;
  }
  // An entry's input replaces the command line's, whichever of the two flags either used.
  if (entry.flags['input'] !== undefined || entry.flags['input-file'] !== undefined) {
    delete flags['input'];
    delete flags['input-file'];
  }
  Object.assign(flags, entry.flags);
  // Tenants with one seed would draw the same arrivals (scaled by rate), so each unseeded tenant
  // takes the next seed after the command line's: independent arrivals, still reproducible.
  if (entry.flags['seed'] === undefined && appliesTo('seed', profile)) {
    const base = cli['seed'] === undefined ? 1 : Number(cli['seed']);
    if (Number.isInteger(base) && base >= 0) flags['seed'] = String(base + index);
  }
  if (entry.api_key !== undefined) flags['key'] = entry.api_key;
  return flags;
}

/** A profile's flag on the command line that no tenant's profile takes is refused, not ignored. */
function refuseUnusedFlags(cli: FlagValues, entries: readonly MixEntry[], file: string): void {
  const profiles = [...new Set(entries.map((e) => e.flags['profile'] ?? profileOf(cli)))];
  for (const [flag, spec] of Object.entries(benchFlags)) {
    if (cli[flag] === undefined || spec.profiles === undefined) continue;
    if (!profiles.some((p) => appliesTo(flag, p))) {
      throw new BenchUsageError(
        `--${flag} applies to no tenant of --mix ${file}: it is for --profile ${spec.profiles.join(', ')}, and the tenants' profiles are ${profiles.join(', ')}`,
      );
    }
  }
}
