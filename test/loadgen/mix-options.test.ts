import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveMix } from '../../src/loadgen/mix-options.js';
import { resolveOptions } from '../../src/loadgen/options.js';
import { benchOutput } from './bench-run.js';

const keyA = `spw_00000000000000aa_${'a'.repeat(43)}`;
const keyB = `spw_00000000000000bb_${'b'.repeat(43)}`;
const keyC = `spw_00000000000000cc_${'c'.repeat(43)}`;

/** A --mix file of `content` (written as is when a string) in a fresh folder. */
function mixFile(content: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), 'spillway-mix-')), 'mix.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const cli = (file: string, extra: Record<string, string | boolean> = {}) => ({
  target: 'http://127.0.0.1:1',
  model: 'sleep',
  duration: '10',
  mix: file,
  ...extra,
});

describe('--mix file errors: one line naming the file (and the tenant), exit 2', () => {
  const steadyA = { name: 'A', rate: 10 };
  it.each<[string, unknown, string]>([
    ['not JSON', '{"tenants": [', 'is not valid JSON'],
    ['not an object', '[1, 2]', ': it must be an object with a non-empty "tenants" array'],
    ['no tenants', { tenants: [] }, ': it must be an object with a non-empty "tenants" array'],
    ['an unknown top-level key', { tenants: [steadyA], colour: 'blue' }, ': unknown key "colour" at the top (only "tenants")'],
    ['a tenant that is not an object', { tenants: ['A'] }, ': tenants[0] must be an object'],
    ['a tenant without a name', { tenants: [{ rate: 1 }] }, ': tenants[0] has no "name"'],
    ['a bad name', { tenants: [{ name: 'a b', rate: 1 }] }, ': tenants[0]: "name" must be 1 to 64 letters, digits, _ or - (got "a b")'],
    ['a name used twice', { tenants: [steadyA, { name: 'B', rate: 1 }, steadyA] }, ': tenant "A" is named twice (tenants[0] and tenants[2]); names must be unique'],
    ['an unknown key', { tenants: [{ ...steadyA, colour: 'blue' }] }, ': tenant "A": unknown key "colour"; a tenant may set name, key, key_env, profile, rate'],
    ['a key spelt with _', { tenants: [{ ...steadyA, spike_rate: 5 }] }, ': tenant "A": unknown key "spike_rate" (did you mean "spike-rate"?)'],
    ['a shared setting', { tenants: [{ ...steadyA, duration: 5 }] }, ': tenant "A": "duration" is shared by every tenant: give it on the command line (--duration)'],
    ['key and key_env both', { tenants: [{ ...steadyA, key: keyA, key_env: 'A_KEY' }] }, ': tenant "A": give "key" or "key_env", not both'],
    ['key_env naming an unset variable', { tenants: [{ ...steadyA, key_env: 'SPILLWAY_TEST_UNSET_KEY' }] }, ': tenant "A": "key_env" names SPILLWAY_TEST_UNSET_KEY, which is not set (or is empty)'],
    ['key_env that is no variable name', { tenants: [{ ...steadyA, key_env: 'A KEY' }] }, ': tenant "A": "key_env" must name an environment variable'],
    ['a key that is not a string', { tenants: [{ ...steadyA, key: 42 }] }, ': tenant "A": "key" must be a string'],
    ['a key with a space', { tenants: [{ ...steadyA, key: 'spw_1 2' }] }, ': tenant "A": "key" must be an API key (spw_…) of visible ASCII characters'],
    ['a setting of the wrong type', { tenants: [{ name: 'A', rate: true }] }, ': tenant "A": "rate" must be a number or a string (got true)'],
    ['a bad rate', { tenants: [steadyA, { name: 'B', rate: 'x' }] }, ': tenant "B": --rate must be a number above 0 (got "x")'],
    ['a missing rate', { tenants: [{ name: 'A' }] }, ': tenant "A": --rate is required for --profile steady'],
    ['a flag of another profile', { tenants: [{ ...steadyA, 'spike-rate': 50 }] }, ': tenant "A": --spike-rate does not apply to --profile steady (only to burst)'],
    ['an unknown profile', { tenants: [{ ...steadyA, profile: 'spiky' }] }, ': tenant "A": --profile must be one of steady, burst, diurnal, replay (got "spiky")'],
    ['a spike past the end', { tenants: [{ name: 'A', profile: 'burst', rate: 1, 'spike-rate': 5, 'spike-at': 8, 'spike-for': 5 }] }, ': tenant "A": --spike-for 5 runs past the end of the run'],
    ['a bad input', { tenants: [{ ...steadyA, 'input-file': 'missing.json' }] }, ': tenant "A": --input-file'],
  ])('refuses %s', async (_, content, message) => {
    const file = mixFile(content);
    const { code, stderr } = await benchOutput(['--target', 'http://127.0.0.1:1', '--model', 'sleep', '--duration', '10', '--mix', file]);
    expect(code).toBe(2);
    expect(stderr).toContain(`spillway bench: --mix ${file}`);
    expect(stderr).toContain(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a file that cannot be read', async () => {
    const { code, stderr } = await benchOutput(['--target', 'http://127.0.0.1:1', '--model', 'sleep', '--mix', '/nonexistent/mix.json']);
    expect(code).toBe(2);
    expect(stderr).toContain('--mix /nonexistent/mix.json cannot be read');
  });

  it('refuses a profile flag on the command line that no tenant takes', () => {
    const file = mixFile({ tenants: [{ name: 'A', rate: 1 }, { name: 'B', rate: 2 }] });
    expect(() => resolveMix(cli(file, { 'spike-rate': '50' }), {})).toThrow(
      `--spike-rate applies to no tenant of --mix ${file}: it is for --profile burst, and the tenants' profiles are steady`,
    );
  });

  it('names the command line, not a tenant, for a shared flag at fault', () => {
    const file = mixFile({ tenants: [{ name: 'A', rate: 1 }] });
    expect(() => resolveMix({ ...cli(file), target: undefined }, {})).toThrow(/^--target is required/);
    expect(() => resolveMix(cli(file, { 'drain-timeout': '-1' }), {})).toThrow(/^--drain-timeout must be a number at or above 0/);
  });
});

describe('resolving a --mix file', () => {
  it('takes what an entry leaves out from the command line, and gives unseeded tenants seeds of their own', () => {
    const file = mixFile({
      tenants: [
        { name: 'A', rate: 400 },
        { name: 'B', rate: '5', seed: 9, arrivals: 'uniform' },
        { name: 'C', profile: 'burst', 'spike-rate': 50, 'spike-at': 2, 'spike-for': 1 },
      ],
    });
    const mix = resolveMix(cli(file, { rate: '7', seed: '3', client: 'poll' }), {});
    expect(mix.tenants.map((t) => t.name)).toEqual(['A', 'B', 'C']);
    const [a, b, c] = mix.tenants.map((t) => t.options);
    expect(a!.settings).toMatchObject({ tenant: 'A', mix: file, profile: 'steady', rate: 400, seed: 3, arrivals: 'poisson', client: 'poll', duration: 10 });
    expect(b!.settings).toMatchObject({ tenant: 'B', rate: 5, seed: 9, arrivals: 'uniform' });
    expect(c!.settings).toMatchObject({ tenant: 'C', profile: 'burst', rate: 7, spike_rate: 50, seed: 5 });
    expect(mix.shared).toMatchObject({ client: 'poll', drain_timeout_s: 120 });
  });

  it('reads an entry\'s files from the mix file\'s folder, and does not pass it the command line\'s flags of other profiles', () => {
    const file = mixFile({ tenants: [{ name: 'R', profile: 'replay', replay: 'arrivals.txt', input: { text: 'hi' } }, { name: 'S' }] });
    writeFileSync(join(file, '..', 'arrivals.txt'), '0\n0.5\n');
    const mix = resolveMix(cli(file, { rate: '2' }), {});
    const [r, s] = mix.tenants.map((t) => t.options);
    expect(r!.profile.kind).toBe('replay');
    expect(r!.body).toBe('{"input":{"text":"hi"}}');
    expect(r!.settings).toMatchObject({ seed: null, replay: join(file, '..', 'arrivals.txt') });
    expect(s!.settings).toMatchObject({ profile: 'steady', rate: 2 });
  });

  it('gives each tenant its key: its own (key, key_env), else --key, else SPILLWAY_API_KEY', () => {
    const file = mixFile({ tenants: [{ name: 'A', rate: 1, key: keyA }, { name: 'B', rate: 1, key_env: 'B_KEY' }, { name: 'C', rate: 1 }] });
    const keys = (flags: Record<string, string>, env: Record<string, string>) => resolveMix(cli(file, flags), env).tenants.map((t) => t.options.api_key);
    expect(keys({}, { B_KEY: keyB })).toEqual([keyA, keyB, undefined]);
    expect(keys({ key: keyC }, { B_KEY: keyB })).toEqual([keyA, keyB, keyC]);
    expect(keys({}, { B_KEY: keyB, SPILLWAY_API_KEY: keyC })).toEqual([keyA, keyB, keyC]);
  });

  it('puts a key\'s public id in the settings, never its secret', () => {
    const file = mixFile({ tenants: [{ name: 'A', rate: 1, key: keyA }] });
    const [a] = resolveMix(cli(file), {}).tenants;
    expect(a!.options.settings['api_key']).toBe('00000000000000aa');
    expect(JSON.stringify(a!.options.settings)).not.toContain('aaaaaaaa');
  });
});

describe('--key', () => {
  const o = (flags: Record<string, string>, env: Record<string, string> = {}) =>
    resolveOptions({ target: 'http://h', model: 'm', rate: '5', duration: '10', ...flags }, env);

  it('comes from the flag, else SPILLWAY_API_KEY; none without either', () => {
    expect(o({ key: keyA }, { SPILLWAY_API_KEY: keyB }).api_key).toBe(keyA);
    expect(o({}, { SPILLWAY_API_KEY: keyB }).api_key).toBe(keyB);
    expect(o({}, { SPILLWAY_API_KEY: '' }).api_key).toBeUndefined();
    expect(o({}).api_key).toBeUndefined();
    expect(o({}).settings['api_key']).toBeNull();
    expect(o({ key: 'not-a-spillway-key' }).settings['api_key']).toBe('given');
  });

  it('refuses an empty key, or one that cannot be a header, without echoing it', () => {
    expect(() => o({ key: '' })).toThrow('--key is empty');
    expect(() => o({ key: 'spw_secret\nx' })).toThrow('--key must be an API key (spw_…) of visible ASCII characters');
    expect(() => o({}, { SPILLWAY_API_KEY: 'spw_secret x' })).toThrow(/^SPILLWAY_API_KEY must be an API key/);
    expect(() => o({ key: 'spw_secret x' })).not.toThrow(/secret/);
  });

  it('is in the help, with --mix and an example of a mix file', async () => {
    const { code, stdout } = await benchOutput(['--help']);
    expect(code).toBe(0);
    for (const text of ['--key <key>', 'SPILLWAY_API_KEY', '--mix <file>', '"tenants"', 'key_env', '--mix tenants.json', '[tenant]']) {
      expect(stdout).toContain(text);
    }
  });
});

describe('a mix file in another folder', () => {
  it('has its entries\' input files read from its own folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-mix-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'input.json'), '[1, 2]');
    writeFileSync(join(dir, 'sub', 'mix.json'), JSON.stringify({ tenants: [{ name: 'A', rate: 1, 'input-file': 'input.json' }] }));
    const [a] = resolveMix(cli(join(dir, 'sub', 'mix.json')), {}).tenants;
    expect(a!.options.body).toBe('{"input":[1,2]}');
  });
});
