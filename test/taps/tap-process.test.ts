import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDeployment, type Deployment } from '../helpers/deployment.js';
import { request, waitForFinal } from '../helpers/http.js';
import { modelRepo } from '../helpers/model-repo.js';
import { cliPath, inBrokerLegSuite, repoRoot, testBrokers } from '../helpers/paths.js';
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
    // Normal priority: in the idle class (the default) a tap gets no CPU while anything else
    // wants it, and on a machine kept busy this test would wait for it past its timeout.
    const normal = { SPILLWAY_TAP_NICE: '0' };
    const first = await spawnSpillway(['tap', '--data', data], normal);
    try {
      const second = await runSpillway(['tap', '--data', data], normal);
      expect(second.code).toBe(1);
      expect(second.output).toContain(`cannot open the tap database ${dbPath}: another process has it open`);
    } finally {
      expect(await first.kill('SIGTERM')).toBe(0);
    }
    const bad = await runSpillway(['tap', '--data', data, '--tap-metadata-fields', 'tenant,not-a-name'], normal);
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

/**
 * Starts `spillway tap` and waits until every thread it has shows `expected`, then kills it.
 * Not spawnSpillway: that waits for the tap to say it started, and a tap in the idle class gets
 * no CPU for that while anything else wants it (the point of the class), so on a busy machine
 * it would not say so in time. Threads started later inherit their starter's class and nice.
 */
async function expectTapThreads(args: readonly string[], expected: { policy: number; nice: number }): Promise<void> {
  const child = spawn(process.execPath, [cliPath, 'tap', ...args], { cwd: repoRoot, stdio: 'ignore' });
  try {
    await until(
      `every thread of the tap at ${JSON.stringify(expected)}`,
      async () => {
        let threads: { policy: number; nice: number }[] = [];
        try {
          if (child.pid !== undefined && child.exitCode === null) threads = threadPriorities(child.pid);
        } catch {
          // A thread ended between listing and reading it: look again.
        }
        return threads.length > 1 && threads.every((t) => t.policy === expected.policy && t.nice === expected.nice) ? true : undefined;
      },
      60_000,
    );
  } finally {
    child.kill('SIGKILL');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  }
}

describe.skipIf(inBrokerLegSuite || process.platform !== 'linux' || !existsSync('/usr/bin/chrt'))('spillway tap yielding the CPU to serving', () => {
  it('runs every thread at nice 19 in the idle class by default, and only at the nice asked otherwise', async () => {
    await expectTapThreads(['--data', dirname(tempDbPath())], { policy: schedIdle, nice: 19 });
    await expectTapThreads(['--data', dirname(tempDbPath()), '--tap-nice', '10'], { policy: schedOther, nice: 10 });
  });
});
