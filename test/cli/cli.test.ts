import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelRepo } from '../helpers/model-repo.js';
import { runSpillway } from '../helpers/processes.js';

describe('the spillway command', () => {
  it('prints help with every flag and its environment variable', async () => {
    const { code, output } = await runSpillway(['--help']);
    expect(code).toBe(0);
    for (const text of ['serve', 'gateway', 'worker', '--port', '--host', '--data', '--models', '--broker', 'SPILLWAY_GATEWAY_PORT']) {
      expect(output).toContain(text);
    }
    expect(output).toContain('"embedded", "kafka://host:port[,host:port...]" or "redis://host:port[/db]"');
    for (const text of ['--store', 'SPILLWAY_STORE]', '--retention-s', 'SPILLWAY_RETENTION_S']) expect(output).toContain(text);
  });

  it('refuses invalid configuration at start and names every problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-cli-'));
    const file = join(dir, 'spillway.yaml');
    writeFileSync(file, 'gateway:\n  port: 70000\n  colour: blue\n');
    const { code, output } = await runSpillway(['serve', '--config', file, '--max-wait-s=-1'], {
      SPILLWAY_WORKER_LEASE_MS: 'soon',
    });
    expect(code).toBe(2);
    expect(output).toContain('invalid configuration');
    expect(output).toContain('gateway.port');
    expect(output).toContain('colour');
    expect(output).toContain('--max-wait-s');
    expect(output).toContain('SPILLWAY_WORKER_LEASE_MS');
  });

  it('lists --sync-secret with its environment variable, and never a value for it', async () => {
    const { code, output } = await runSpillway(['--help'], { SPILLWAY_WORKER_SYNC_SECRET: 'a-secret-from-the-environment' });
    expect(code).toBe(0);
    const line = output.split('\n').find((l) => l.includes('--sync-secret'));
    expect(line).toContain('[SPILLWAY_WORKER_SYNC_SECRET]');
    expect(line).not.toContain('default');
    expect(output).not.toContain('a-secret-from-the-environment');
  });

  it('refuses to start a worker that serves a dispatch: sync model without the sync secret, naming the setting', async () => {
    const models = modelRepo({ sleep: { dispatch: 'sync' } });
    const data = mkdtempSync(join(tmpdir(), 'spillway-cli-'));
    // An empty variable is an unset one, whatever the environment running the tests has.
    const { code, output } = await runSpillway(['worker', '--models', models, '--data', data], { SPILLWAY_WORKER_SYNC_SECRET: '' });
    expect(code).toBe(2);
    expect(output).toContain('invalid configuration');
    for (const text of ['worker.sync_secret', 'SPILLWAY_WORKER_SYNC_SECRET', '--sync-secret', 'sleep']) expect(output).toContain(text);
  });

  it('refuses a sync secret that is too short without printing it', async () => {
    const { code, output } = await runSpillway(['worker', '--sync-secret', 'short-secret', '--data', mkdtempSync(join(tmpdir(), 'spillway-cli-'))]);
    expect(code).toBe(2);
    expect(output).toContain('worker.sync_secret: must NOT have fewer than 16 characters');
    expect(output).not.toContain('short-secret');
  });

  it('refuses an unknown command or flag with usage', async () => {
    const unknownCommand = await runSpillway(['launch']);
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.output).toContain('unknown command "launch"');
    const unknownFlag = await runSpillway(['serve', '--colour', 'blue']);
    expect(unknownFlag.code).toBe(2);
    // Run from the clone as `node dist/cli/main.js`, the usage says so.
    expect(unknownFlag.output).toContain('Usage: node dist/cli/main.js [command]');
  });

  it.each([
    ['mongodb://127.0.0.1', 'must be "sqlite" or redis://host:port[/db], got "mongodb://127.0.0.1"'],
    ['redis://127.0.0.1:99999', 'store: port 99999 is out of range; expected redis://host:port[/db]'],
    ['redis://user:pw@127.0.0.1:6400', 'credentials in the URL are not supported'],
  ])('refuses the store %s at start, naming the setting and the problem', async (store, problem) => {
    const { code, output } = await runSpillway(['gateway', '--store', store, '--port', '0', '--data', mkdtempSync(join(tmpdir(), 'spillway-cli-'))]);
    expect(code).toBe(2);
    expect(output).toContain('invalid configuration');
    expect(output).toContain('store: ');
    expect(output).toContain(problem);
  });

  it('refuses the broker carrier-pigeon://loft as invalid configuration', async () => {
    const broker = 'carrier-pigeon://loft';
    const { code, output } = await runSpillway(['worker', '--broker', broker, '--data', mkdtempSync(join(tmpdir(), 'spillway-cli-'))]);
    expect(code).toBe(2);
    expect(output).toContain('invalid configuration');
    expect(output).toContain(`broker: must be "embedded", kafka://host:port[,host:port...] or redis://host:port[/db], got "${broker}"`);
  });
});
