import { basename, isAbsolute, relative } from 'node:path';

/**
 * The command as the user ran it, for usage lines and examples: `spillway` when it was found
 * on the PATH (after `npm install -g .`), otherwise `node <path to main.js>`, relative to the
 * working folder when it lies below it: `node dist/cli/main.js` from a clone.
 */
export function programName(script = process.argv[1] ?? '', cwd = process.cwd()): string {
  if (basename(script) === 'spillway') return 'spillway';
  const rel = relative(cwd, script);
  return `node ${rel === '' || rel.startsWith('..') || isAbsolute(rel) ? script : rel}`;
}

const commandLine = /\bspillway (?=\[|(?:serve|gateway|worker|dispatcher|dlq|bench|plan|autoscale)\b)/g;

/** Help text that writes command lines as `spillway <command> …`, shown as the user runs it. */
export function asRun(text: string, program = programName()): string {
  return text.replace(commandLine, `${program} `);
}
