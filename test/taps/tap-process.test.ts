import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { inBrokerLegSuite, testBrokers } from '../helpers/paths.js';
import { runSpillway, spawnSpillway, type SpillwayProcess } from '../helpers/processes.js';
import { caughtUp, readClosedDb, tempDbPath, until } from './tap-test-kit.js';

/**
 * `spillway tap` as its own process, killed without warning while predictions stream past:
 * after a restart it must hold exactly one row per prediction, none missing.
 */
describe.each(testBrokers)('spillway tap killed mid-stream on the $name broker', ({ url }) => {
  let deployment: Deployment | undefined;
  const processes: SpillwayProcess[] = [];
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
    await deployment?.close();
    deployment = undefined;
  });

  it('resumes with nothing lost and nothing doubled', async () => {
    const models = modelRepo({ fixtures: ['flaky'] });
    const d = (deployment = await startDeployment({ broker: url, models }));
    const dbPath = tempDbPath();
    const args = ['tap', '--broker', url, '--prefix', d.prefix, '--data', d.dataDir, '--models', models, '--tap-db', dbPath, '--lease-ms', '1000'];
    // Small batches: many transactions, so the kill lands among them rather than after the last.
    // Normal priority: at its default (idle class) the tap would run only when the CPU is free,
    // and on a busy test machine this test would then wait on the other tests.
    const env = { SPILLWAY_TAP_BATCH_SIZE: '4', SPILLWAY_KAFKA_PARTITIONS: '2', SPILLWAY_TAP_NICE: '0' };
    const startTap = async () => {
      const p = await spawnSpillway(args, env);
      processes.push(p);
      return p;
    };
    const first = await startTap();

    const total = 120;
    const ids: string[] = [];
    let submitted = 0;
    const submitAll = (async () => {
      // A steady stream, a few at a time, so records keep arriving before, during and after the kill.
      while (submitted < total) {
        const wave = Array.from({ length: Math.min(6, total - submitted) }, (_, i) =>
          request<{ id: string }>(`${d.url}/v1/models/echo/predictions`, { body: { input: { n: submitted + i } } }),
        );
        submitted += wave.length;
        for (const answer of await Promise.all(wave)) {
          expect(answer.status).toBe(202);
          ids.push(answer.body.id);
        }
      }
    })();
    // Kill once the tap has committed part of the stream: every answered request was published
    // first, so a backlog below the answered count means the tap acked (after committing) some.
    await until('the tap to have written part of the stream', async () => {
      const published = ids.length;
      return published >= 30 && (await d.broker.backlog(`${d.prefix}.requests.echo`, 'tap.analytics')) < published ? true : undefined;
    });
    expect(await first.kill('SIGKILL')).toBe(null);
    await submitAll;
    // Serving went on without the tap.
    for (const id of ids) expect((await waitForFinal(d.url, id)).status).toBe('succeeded');

    const second = await startTap();
    await until('the restarted tap to catch up', async () => ((await caughtUp(d.broker, d.prefix)) ? true : undefined), 60_000);
    expect(await second.kill('SIGTERM')).toBe(0);

    const rows = await readClosedDb(dbPath, 'SELECT id, status, input_bytes FROM predictions ORDER BY id');
    expect(rows).toHaveLength(total);
    expect(rows.map((r) => r['id'])).toEqual([...ids].sort());
    expect(rows.every((r) => r['status'] === 'succeeded' && r['input_bytes'] !== null)).toBe(true);
  });
});

describe.skipIf(inBrokerLegSuite)('spillway tap refusing what it cannot do', () => {
  it('says so when another process has its file, and when a metadata field cannot be a column', async () => {
    const dbPath = tempDbPath();
    const data = dirname(dbPath);
    const first = await spawnSpillway(['tap', '--data', data]);
    try {
      const second = await runSpillway(['tap', '--data', data]);
      expect(second.code).toBe(1);
      expect(second.output).toContain(`cannot open the tap database ${dbPath}: another process has it open`);
    } finally {
      expect(await first.kill('SIGTERM')).toBe(0);
    }
    const bad = await runSpillway(['tap', '--data', data, '--tap-metadata-fields', 'tenant,not-a-name']);
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('tap.metadata_fields.1: must be a field name of letters, digits and _');
  });
});

/** Scheduling policy and nice value of every thread of a process, from /proc (Linux). */
function threadPriorities(pid: number): { policy: number; nice: number }[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3, "state".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { nice: Number(fields[19 - 3]), policy: Number(fields[41 - 3]) };
  });
}

const schedOther = 0;
const schedIdle = 5;

describe.skipIf(inBrokerLegSuite || process.platform !== 'linux' || !existsSync('/usr/bin/chrt'))('spillway tap yielding the CPU to serving', () => {
  it('runs every thread at nice 19 in the idle class by default, and only at the nice asked otherwise', async () => {
    const idle = await spawnSpillway(['tap', '--data', dirname(tempDbPath())]);
    try {
      const threads = threadPriorities(idle.child.pid!);
      expect(threads.length).toBeGreaterThan(1);
      for (const t of threads) expect(t).toEqual({ policy: schedIdle, nice: 19 });
    } finally {
      expect(await idle.kill('SIGTERM')).toBe(0);
    }
    const niced = await spawnSpillway(['tap', '--data', dirname(tempDbPath()), '--tap-nice', '10']);
    try {
      for (const t of threadPriorities(niced.child.pid!)) expect(t).toEqual({ policy: schedOther, nice: 10 });
    } finally {
      expect(await niced.kill('SIGTERM')).toBe(0);
    }
  });
});
