import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRecord } from '../../src/protocol/prediction.js';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { predict, request } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { testBrokers } from '../helpers/paths.js';
import { runSpillway } from '../helpers/processes.js';

interface Listed {
  id: string | null;
  model: string | null;
  attempts: number;
  replayed: boolean;
  reason: { code: string };
  unreplayable?: string;
}

/** The JSON document in the command's output (logs, if any, go to stderr around it). */
function jsonIn(output: string): unknown {
  const start = output.search(/^[[{]/m);
  return JSON.parse(output.slice(start));
}

describe.each(testBrokers)('spillway dlq on the $name broker', ({ url }) => {
  let d: Deployment;
  let poisonId: string;
  beforeAll(async () => {
    d = await startDeployment({ models: modelRepo({ fixtures: ['flaky'] }), broker: url });
    // Fails on each of its 3 attempts (the fixture succeeds from its 4th call for this key on).
    const res = await predict(d.url, 'flaky', { key: 'poison', fail_times: 3, retryable: true }, { prefer: 'wait=20' });
    expect(res.body).toMatchObject({ status: 'failed', attempts: 3 });
    poisonId = res.body.id;
    // And one message that is not a request at all.
    await d.broker.publish(`${d.prefix}.requests.flaky`, [{ value: 'not a request' }]);
    await predict(d.url, 'flaky', { key: 'after', fail_times: 0 }, { prefer: 'wait=20' });
  });
  afterAll(() => d.close());

  const cli = (...args: string[]) => runSpillway(['dlq', ...args, '--data', d.dataDir, '--broker', url, '--prefix', d.prefix]);

  it('lists the dead letters with their reasons, consuming nothing', async () => {
    for (let i = 0; i < 2; i++) {
      const { code, output } = await cli('list', '--json');
      expect(code).toBe(0);
      const letters = jsonIn(output) as Listed[];
      expect(letters.find((l) => l.id === poisonId)).toMatchObject({ model: 'flaky', attempts: 3, replayed: false, reason: { code: 'SPILLWAY_MODEL_FAILED' } });
      expect(letters.find((l) => l.reason.code === 'SPILLWAY_UNDECODABLE_MESSAGE')?.unreplayable).toMatch(/not a request/);
    }
    const { output } = await cli('list');
    expect(output).toContain(poisonId);
    expect(output).toContain('waiting');
  });

  it('replays a poison request once its cause is gone: it runs again and its record moves on', async () => {
    const { code, output } = await cli('replay', '--id', poisonId);
    expect(code).toBe(0);
    expect(output).toContain(`replayed 1 letter(s): ${poisonId}`);
    let record: PredictionRecord | undefined;
    for (let i = 0; i < 200 && record?.status !== 'succeeded'; i++) {
      record = (await request<PredictionRecord>(`${d.url}/v1/predictions/${poisonId}`)).body;
      if (record.status !== 'succeeded') await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(record).toMatchObject({ id: poisonId, status: 'succeeded', replay: 1, output: { calls: 4 } });

    const listed = jsonIn((await cli('list', '--json')).output) as Listed[];
    expect(listed.find((l) => l.id === poisonId)?.replayed).toBe(true);
    const again = await cli('replay', '--id', poisonId);
    expect(again.code).toBe(0);
    expect(again.output).toContain('already replayed');
  });

  it('says so when asked to replay nothing, or a letter that does not exist', async () => {
    const none = await cli('replay');
    expect(none.code).toBe(1);
    expect(none.output).toContain('--id <id>');
    const unknown = await cli('replay', '--id', 'no-such-id');
    expect(unknown.code).toBe(1);
    expect(unknown.output).toContain('no dead letter for no-such-id');
    const misplaced = await runSpillway(['serve', '--json']);
    expect(misplaced.code).toBe(2);
  });
});
