import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './paths.js';

const run = promisify(execFile);

/**
 * Runs scripts/<name> (bash) and returns its last line of standard output, where scripts/kafka
 * and scripts/redis print the address they started, or all of it. Progress goes to standard
 * error and is not returned. A non-zero exit rejects, with the exit status in the error's `code`.
 */
export async function repoScript(
  name: string,
  args: readonly string[],
  env: Record<string, string>,
  output: 'last' | 'all',
  timeoutMs: number,
): Promise<string> {
  const { stdout } = await run('bash', [`${repoRoot}/scripts/${name}`, ...args], {
    timeout: timeoutMs,
    env: { ...process.env, ...env },
  });
  const text = stdout.trim();
  return output === 'all' ? text : (text.split('\n').at(-1) ?? '');
}

/**
 * A temporary folder made on first use of `path`: a describe block whose tests are all filtered
 * out leaves nothing behind.
 */
export function lazyTempDir(prefix: string): { readonly path: string; readonly made: boolean; remove(): void } {
  let dir: string | undefined;
  return {
    get path() {
      return (dir ??= mkdtempSync(join(tmpdir(), prefix)));
    },
    get made() {
      return dir !== undefined;
    },
    remove() {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}
