import { describe, expect, it } from 'vitest';
import { asRun, programName } from '../../src/cli/program-name.js';

describe('the program name in usage text', () => {
  it('is `spillway` when run from the PATH, else node with the script as the user can type it', () => {
    expect(programName('/usr/local/bin/spillway', '/home/me')).toBe('spillway');
    expect(programName('/home/me/spillway/dist/cli/main.js', '/home/me/spillway')).toBe('node dist/cli/main.js');
    expect(programName('/opt/spillway/dist/cli/main.js', '/tmp')).toBe('node /opt/spillway/dist/cli/main.js');
  });

  it('rewrites command lines and leaves other mentions of spillway alone', () => {
    const help = 'Usage: spillway bench --target URL\n  spillway plan --rate 1 (see spillway plan --help)\nreads spillway.yaml; spillway serves';
    expect(asRun(help, 'node dist/cli/main.js')).toBe(
      'Usage: node dist/cli/main.js bench --target URL\n  node dist/cli/main.js plan --rate 1 (see node dist/cli/main.js plan --help)\nreads spillway.yaml; spillway serves',
    );
    expect(asRun(help, 'spillway')).toBe(help);
  });
});
