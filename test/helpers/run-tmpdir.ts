import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Vitest global setup: every temporary folder a run makes (data folders, model repositories,
 * servers' files, those of the processes tests start) goes under one folder of its own, which
 * the run removes when it ends. Tests still make a fresh folder each, so none shares one; a
 * machine running the suites again and again no longer fills its /tmp.
 */
export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'spillway-test-run-'));
  // os.tmpdir() reads TMPDIR at each call, and the test workers (forks) inherit it.
  process.env['TMPDIR'] = root;
  return () => rmSync(root, { recursive: true, force: true, maxRetries: 3 });
}
