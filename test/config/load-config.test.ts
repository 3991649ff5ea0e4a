import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configFlags } from '../../src/config/flags.js';
import { laneWeightsOf } from '../../src/config/lane-weights.js';
import { loadConfig } from '../../src/config/load-config.js';
import { configLeaves } from '../../src/config/schema.js';
import { SpillwayError } from '../../src/protocol/errors.js';
import { topicsFor } from '../../src/protocol/topics.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spillway-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

/** Runs loadConfig expecting it to fail, and returns the error for closer checks. */
function failure(run: () => unknown): SpillwayError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(SpillwayError);
    const spillway = error as SpillwayError;
    expect(spillway.code).toBe('SPILLWAY_INVALID_CONFIG');
    return spillway;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('fills every default when nothing is given, with paths made absolute against cwd', () => {
    const config = loadConfig({ cwd: dir });
    expect(config).toEqual({
      broker: 'embedded',
      store: 'sqlite',
      retention_s: 86400,
      data: join(dir, 'data'),
      models: join(dir, 'models'),
      prefix: 'spillway',
      log_level: 'info',
      auth: 'auto',
      queuing: 'fair',
      limits: {},
      tenants: {},
      gateway: { host: '127.0.0.1', port: 8080, body_limit_bytes: 1048576, max_wait_s: 60, max_waiters: 10000 },
      worker: { lease_ms: 30000, heartbeat_ms: 2000, running_after_ms: 100, drain_timeout_ms: 30000, sync_host: '127.0.0.1', sync_port: 0 },
      embedded: { busy_timeout_ms: 5000, poll_ms: 2 },
      kafka: { client_id: 'spillway', partitions: 4, replication_factor: 1 },
      redis: { max_message_bytes: 1_000_000 },
      callbacks: {
        allow: [],
        secrets: [],
        max_attempts: 8,
        backoff_base_ms: 1000,
        backoff_cap_ms: 300000,
        connect_timeout_ms: 5000,
        response_timeout_ms: 10000,
      },
      tracing: { service_name: 'spillway', sample_ratio: 1 },
      tap: { name: 'analytics', metadata_fields: [], batch_size: 512, linger_ms: 500, nice: 19 },
    });
  });

  it('gives every listed tenant a queue lane with its weight when queuing is fair, and none when fifo', () => {
    write('spillway.yaml', 'tenants:\n  acme: { weight: 3 }\n  beta: { max_queued: 5 }\n');
    const fair = loadConfig({ cwd: dir });
    expect([...laneWeightsOf(fair)]).toEqual([
      ['acme', 3],
      ['beta', 1],
    ]);
    const topics = topicsFor('p', laneWeightsOf(fair));
    expect(topics.lanes('m').map((l) => [l.topic, l.weight])).toEqual([
      ['p.requests.m', 1],
      ['p.requests.m.lane.acme', 3],
      ['p.requests.m.lane.beta', 1],
    ]);
    expect(topics.requests('m', 'acme')).toBe('p.requests.m.lane.acme');
    expect(topics.requests('m', 'unlisted')).toBe('p.requests.m');
    expect(topics.requests('m')).toBe('p.requests.m');
    expect(laneWeightsOf(loadConfig({ cwd: dir, argv: { queuing: 'fifo' } })).size).toBe(0);
    write('spillway.yaml', 'tenants:\n  acme: { weight: 0 }\n');
    expect(() => loadConfig({ cwd: dir })).toThrow(/weight/);
  });

  it('lets the file override defaults, picking up ./spillway.yaml without being told', () => {
    write('spillway.yaml', 'broker: kafka://k1:9092,k2:9092\ngateway:\n  port: 9001\nworker:\n  models: [a, b]\n');
    const config = loadConfig({ cwd: dir });
    expect(config.broker).toBe('kafka://k1:9092,k2:9092');
    expect(config.gateway.port).toBe(9001);
    expect(config.gateway.host).toBe('127.0.0.1');
    expect(config.worker.models).toEqual(['a', 'b']);
  });

  it('lets the environment override the file, coercing by schema type', () => {
    const file = write('conf/custom.yaml', 'gateway:\n  port: 9001\n  max_wait_s: 5\nprefix: fromfile\n');
    const config = loadConfig({
      cwd: dir,
      env: {
        SPILLWAY_CONFIG: file,
        SPILLWAY_GATEWAY_PORT: '9002',
        SPILLWAY_GATEWAY_MAX_WAIT_S: '0.5',
        SPILLWAY_WORKER_MODELS: 'iris, mnist',
        SPILLWAY_LOG_LEVEL: 'debug',
      },
    });
    expect(config.gateway.port).toBe(9002);
    expect(config.gateway.max_wait_s).toBe(0.5);
    expect(config.worker.models).toEqual(['iris', 'mnist']);
    expect(config.log_level).toBe('debug');
    expect(config.prefix).toBe('fromfile');
  });

  it('lets flags override the environment, and ignores flags that are not settings', () => {
    const config = loadConfig({
      cwd: dir,
      env: { SPILLWAY_GATEWAY_PORT: '9002', SPILLWAY_GATEWAY_HOST: '0.0.0.0' },
      argv: { port: '9003', 'worker-models': 'iris', help: false, verbose: true },
    });
    expect(config.gateway.port).toBe(9003);
    expect(config.gateway.host).toBe('0.0.0.0');
    expect(config.worker.models).toEqual(['iris']);
  });

  it('resolves data and models against the file folder when the file set them, else against cwd', () => {
    const file = write('etc/spillway/conf.yaml', 'data: ./state\nmodels: ../repo\n');
    const fromFile = loadConfig({ cwd: dir, file });
    expect(fromFile.data).toBe(join(dir, 'etc/spillway/state'));
    expect(fromFile.models).toBe(join(dir, 'etc/repo'));

    const overridden = loadConfig({ cwd: dir, file, argv: { models: 'mine' } });
    expect(overridden.data).toBe(join(dir, 'etc/spillway/state'));
    expect(overridden.models).toBe(join(dir, 'mine'));
  });

  it('accepts only the brokers that exist: amqp:// is refused before anything starts', () => {
    write('spillway.yaml', 'broker: amqp://127.0.0.1:5672\n');
    const error = failure(() => loadConfig({ cwd: dir }));
    const byPointer = new Map(error.details.map((d) => [d.pointer, d.message]));
    expect(byPointer.get('broker')).toBe(
      `must be "embedded", kafka://host:port[,host:port...] or redis://host:port[/db], got "amqp://127.0.0.1:5672" (from ${join(dir, 'spillway.yaml')} line 1)`,
    );
    expect(loadConfig({ cwd: dir, argv: { broker: 'embedded' } }).broker).toBe('embedded');
    expect(loadConfig({ cwd: dir, argv: { broker: 'kafka://127.0.0.1:9092' } }).broker).toBe('kafka://127.0.0.1:9092');
    expect(loadConfig({ cwd: dir, argv: { broker: 'redis://127.0.0.1:6379/2' } }).broker).toBe('redis://127.0.0.1:6379/2');
  });

  it('takes the store as sqlite or a redis:// URL, from the file, SPILLWAY_STORE or --store, and refuses anything else', () => {
    expect(loadConfig({ cwd: dir, env: { SPILLWAY_STORE: 'redis://127.0.0.1:6400/2' } }).store).toBe('redis://127.0.0.1:6400/2');
    expect(loadConfig({ cwd: dir, env: { SPILLWAY_STORE: 'redis://a:1' }, argv: { store: 'sqlite' } }).store).toBe('sqlite');
    write('spillway.yaml', 'store: postgres://127.0.0.1/results\n');
    const error = failure(() => loadConfig({ cwd: dir }));
    expect(new Map(error.details.map((d) => [d.pointer, d.message])).get('store')).toBe(
      `must be "sqlite" or redis://host:port[/db], got "postgres://127.0.0.1/results" (from ${join(dir, 'spillway.yaml')} line 1)`,
    );
  });

  it('reads the retention as top-level retention_s, from SPILLWAY_RETENTION_S or --retention-s', () => {
    expect(loadConfig({ cwd: dir, env: { SPILLWAY_RETENTION_S: '3600' } }).retention_s).toBe(3600);
    expect(loadConfig({ cwd: dir, env: { SPILLWAY_RETENTION_S: '3600' }, argv: { 'retention-s': '60' } }).retention_s).toBe(60);
    write('spillway.yaml', 'store:\n  retention_s: 60\n');
    expect(failure(() => loadConfig({ cwd: dir })).details.map((d) => d.pointer)).toEqual(['store']);
  });

  it('reports every problem at once, each with its source', () => {
    const file = write('spillway.yaml', 'gateway:\n  port: 70000\ngatway:\n  host: 0.0.0.0\n');
    const error = failure(() => loadConfig({ cwd: dir, env: { SPILLWAY_GATEWAY_MAX_WAIT_S: '-1' } }));
    const byPointer = new Map(error.details.map((d) => [d.pointer, d.message]));
    expect(error.details).toHaveLength(3);
    expect(byPointer.get('gateway.port')).toMatch(/65535.*70000.*spillway\.yaml line 2/);
    expect(byPointer.get('gatway')).toMatch(/unknown setting.*gateway.*spillway\.yaml line 3/);
    expect(byPointer.get('gateway.max_wait_s')).toMatch(/> 0.*-1.*env SPILLWAY_GATEWAY_MAX_WAIT_S/);
    for (const detail of error.details) expect(error.message).toContain(detail.message);
    expect(error.message).toContain(file);
  });

  it('reports a value that cannot be coerced alongside the other problems', () => {
    const error = failure(() =>
      loadConfig({ cwd: dir, env: { SPILLWAY_GATEWAY_PORT: 'abc' }, argv: { 'log-level': 'loud' } }),
    );
    expect(error.details.map((d) => d.pointer)).toEqual(['gateway.port', 'log_level']);
    expect(error.details[0]?.message).toMatch(/integer.*"abc".*SPILLWAY_GATEWAY_PORT/);
    expect(error.details[1]?.message).toMatch(/one of fatal.*"loud".*--log-level/);
  });

  it('judges only the value that wins', () => {
    write('spillway.yaml', 'gateway:\n  port: 70000\n');
    const config = loadConfig({ cwd: dir, env: { SPILLWAY_GATEWAY_PORT: 'abc' }, argv: { port: '8081' } });
    expect(config.gateway.port).toBe(8081);
  });

  it('fails when an explicitly named file is missing', () => {
    const missing = join(dir, 'nope.yaml');
    expect(failure(() => loadConfig({ cwd: dir, file: missing })).message).toContain(missing);
    expect(failure(() => loadConfig({ cwd: dir, env: { SPILLWAY_CONFIG: 'nope.yaml' } })).message).toMatch(
      /nope\.yaml does not exist \(named by SPILLWAY_CONFIG\)/,
    );
  });

  it('names the file and line of a YAML syntax error', () => {
    const file = write('broken.yaml', 'gateway:\n  port: 8080\n  host: [unclosed\n');
    const error = failure(() => loadConfig({ cwd: dir, file }));
    expect(error.message).toContain(file);
    expect(error.details[0]?.message).toMatch(/broken\.yaml at line \d+, column \d+/);
  });

  it('rejects a file whose top level is not a mapping', () => {
    const file = write('list.yaml', '- a\n- b\n');
    expect(failure(() => loadConfig({ cwd: dir, file })).message).toMatch(/must be a mapping/);
  });

  it('takes the sync secret from the file, SPILLWAY_WORKER_SYNC_SECRET or --sync-secret, and never shows it in a problem', () => {
    const secret = 'a-sync-secret-of-the-deployment';
    expect(loadConfig({ cwd: dir, env: { SPILLWAY_WORKER_SYNC_SECRET: secret } }).worker.sync_secret).toBe(secret);
    expect(loadConfig({ cwd: dir, argv: { 'sync-secret': secret } }).worker.sync_secret).toBe(secret);
    write('spillway.yaml', 'worker:\n  sync_secret: short-secret\n');
    const tooShort = failure(() => loadConfig({ cwd: dir }));
    expect(tooShort.details.map((d) => d.pointer)).toEqual(['worker.sync_secret']);
    expect(tooShort.details[0]?.message).toMatch(/fewer than 16 characters, got 12 characters \(not shown: a secret\).*spillway\.yaml line 2/);
    expect(tooShort.message).not.toContain('short-secret');
    const spaced = failure(() => loadConfig({ cwd: dir, env: { SPILLWAY_WORKER_SYNC_SECRET: 'has a space in the middle' } }));
    expect(spaced.details[0]?.message).toMatch(/printable ASCII without spaces.*not shown.*SPILLWAY_WORKER_SYNC_SECRET/);
    expect(spaced.message).not.toContain('has a space');
    write('spillway.yaml', 'worker:\n  sync_secret: 1234567890123456\n');
    const notText = failure(() => loadConfig({ cwd: dir }));
    expect(notText.details[0]?.message).toMatch(/must be string, got a value not shown/);
    expect(notText.message).not.toContain('1234567890123456');
  });

  it('returns a deep-frozen result', () => {
    const config = loadConfig({ cwd: dir, argv: { 'worker-models': 'a,b' } });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.gateway)).toBe(true);
    expect(Object.isFrozen(config.worker.models)).toBe(true);
    expect(() => {
      (config.gateway as { port: number }).port = 1;
    }).toThrow(TypeError);
    // Defaults must be fresh objects each time, or a second load would find them frozen.
    expect(loadConfig({ cwd: dir, argv: { port: '1' } }).gateway.port).toBe(1);
  });
});

describe('configFlags', () => {
  it('lists the flag-able settings with their paths and types', () => {
    const flags = new Map(configFlags().map((f) => [f.flag, f]));
    expect(flags.get('port')).toMatchObject({ path: 'gateway.port', type: 'integer', env: 'SPILLWAY_GATEWAY_PORT' });
    expect(flags.get('host')).toMatchObject({ path: 'gateway.host', type: 'string' });
    expect(flags.get('data')).toMatchObject({ path: 'data', type: 'string' });
    expect(flags.get('models')).toMatchObject({ path: 'models', type: 'string' });
    expect(flags.get('broker')).toMatchObject({ path: 'broker', default: 'embedded' });
    expect(flags.get('worker-models')).toMatchObject({ path: 'worker.models', type: 'array' });
    expect(flags.get('log-level')?.choices).toContain('debug');
    expect(flags.has('heartbeat-ms')).toBe(false);
    for (const flag of flags.values()) expect(flag.description).not.toBe('');
  });

  it('gives every setting a distinct environment variable and every flag a distinct name', () => {
    const leaves = configLeaves();
    expect(new Set(leaves.map((l) => l.env)).size).toBe(leaves.length);
    expect(new Set(configFlags().map((f) => f.flag)).size).toBe(configFlags().length);
    expect(leaves.every((l) => l.description !== '')).toBe(true);
  });
});
