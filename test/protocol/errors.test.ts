import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toProblem } from '../../src/http/problem.js';
import { errorCatalogue, SpillwayError, type ErrorCode } from '../../src/protocol/errors.js';
import { repoRoot } from '../helpers/paths.js';

const doc = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');
const codes = Object.keys(errorCatalogue) as ErrorCode[];

describe('the error catalogue', () => {
  it('documents every code in docs/errors.md, and documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^### (SPILLWAY_[A-Z_]+)$/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...codes].sort());
  });

  it('gives each code a distinct problem type and its own status', () => {
    const types = codes.map((code) => toProblem(new SpillwayError(code), '/x').type);
    expect(new Set(types).size).toBe(codes.length);
    for (const code of codes) {
      const problem = toProblem(new SpillwayError(code), '/x');
      expect(problem).toMatchObject({ code, status: errorCatalogue[code].status, title: errorCatalogue[code].title });
      expect(doc).toContain(`### ${code}`);
    }
  });
});
