import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelRepository } from '../../src/models/model-repository.js';
import { modelRepo } from '../helpers/model-repo.js';

/** A copy of the demo repository with the test steps and these pipelines (name → steps). */
function repoWith(pipelines: Record<string, string[] | string>): string {
  const dir = modelRepo({ fixtures: ['words', 'count', 'gate'] });
  for (const [name, steps] of Object.entries(pipelines)) {
    mkdirSync(join(dir, name));
    const text = typeof steps === 'string' ? steps : `steps:\n${steps.map((m) => `  - model: ${m}\n`).join('')}`;
    writeFileSync(join(dir, name, 'pipeline.yaml'), text);
  }
  return dir;
}

describe('pipelines in the model repository', () => {
  it('reads a pipeline as its steps in order, nested pipelines spelled out', () => {
    const repo = loadModelRepository(repoWith({ wordcount: ['words', 'count'], again: ['echo', 'wordcount'] }));
    expect(repo.failures).toEqual([]);
    expect(repo.pipelines.get('wordcount')).toMatchObject({ name: 'wordcount', declared: ['words', 'count'], steps: ['words', 'count'] });
    expect(repo.pipelines.get('again')).toMatchObject({ declared: ['echo', 'wordcount'], steps: ['echo', 'words', 'count'] });
    // The models keep serving as models, with one topic and pool each, however many pipelines use them.
    expect([...repo.models.keys()]).toEqual(expect.arrayContaining(['words', 'count', 'echo']));
  });

  it('fails a pipeline that names a missing model, forms a cycle or is malformed, naming the problem; the rest serve', () => {
    const repo = loadModelRepository(
      repoWith({
        good: ['words', 'count'],
        missing: ['words', 'nosuchmodel'],
        ping: ['echo', 'pong'],
        pong: ['ping'],
        selfish: ['selfish'],
        empty: 'steps: []\n',
        typo: 'stpes:\n  - model: echo\n',
      }),
    );
    const failure = (name: string) => repo.failures.find((f) => f.name === name);
    expect([...repo.pipelines.keys()]).toEqual(['good']);
    expect(failure('missing')?.error.message).toMatch(/steps\.1\.model: names nosuchmodel, which is neither a model nor a pipeline/);
    expect(failure('ping')?.error.message).toMatch(/ping forms a cycle: ping → pong → ping/);
    expect(failure('pong')?.error.message).toMatch(/cycle/);
    expect(failure('selfish')?.error.message).toMatch(/selfish forms a cycle/);
    expect(failure('empty')?.error.message).toMatch(/steps: must NOT have fewer than 1 items/);
    expect(failure('typo')?.error.message).toMatch(/must NOT have additional properties "stpes"/);
    for (const name of ['missing', 'ping', 'empty']) {
      expect(failure(name)).toMatchObject({ kind: 'pipeline', error: { code: 'SPILLWAY_INVALID_MODEL_CONFIG' } });
    }
    expect(repo.models.has('words')).toBe(true);
  });

  it('refuses a step that only answers synchronously, or a model that failed to load', () => {
    const dir = repoWith({ 'via-sync': ['echo', 'syncy'], 'via-broken': ['echo', 'misconfigured'] });
    mkdirSync(join(dir, 'syncy'));
    writeFileSync(join(dir, 'syncy', 'model.yaml'), 'runtime: handler\nfile: handler.js\ndispatch: sync\n');
    writeFileSync(join(dir, 'syncy', 'handler.js'), 'export const predict = (x) => x;\n');
    mkdirSync(join(dir, 'misconfigured'));
    writeFileSync(join(dir, 'misconfigured', 'model.yaml'), 'runtime: tensorflow\n');
    const repo = loadModelRepository(dir);
    expect(repo.failures.find((f) => f.name === 'via-sync')?.error.message).toMatch(/model syncy is dispatch: sync/);
    expect(repo.failures.find((f) => f.name === 'via-broken')?.error.message).toMatch(/misconfigured failed to load/);
  });

  it('a worker reading some models only reads no pipelines', () => {
    const repo = loadModelRepository(repoWith({ wordcount: ['words', 'count'] }), ['words']);
    expect([...repo.models.keys()]).toEqual(['words']);
    expect(repo.pipelines.size).toBe(0);
    expect(repo.failures).toEqual([]);
  });
});
