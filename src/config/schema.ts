import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from '../protocol/string-enum.js';

/**
 * The one description of Spillway's settings. The YAML file, the SPILLWAY_* environment
 * variables, the CLI flags and --help are all derived from it, so a new setting is added here
 * and nowhere else. `x-flag` names the CLI flag for settings worth setting per invocation.
 */

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const section = { additionalProperties: false, default: {} } as const;

export const authModes = ['auto', 'keys', 'none'] as const;

export const queuingModes = ['fair', 'fifo'] as const;

/** Letters, digits, _ and -: a tenant name is part of key names in the store and of metric labels. */
export const tenantNamePattern = '^[a-zA-Z0-9_-]{1,64}$';

/** The limits a tenant, a tenant's model, or a key may have; an absent one is no limit. */
const limitFields = {
  rate_per_s: Type.Optional(
    Type.Number({ minimum: 0, 'x-flag': 'rate-per-s', description: 'Requests per second a tenant may submit (token bucket, shared by every gateway)' }),
  ),
  burst: Type.Optional(
    Type.Integer({ minimum: 1, 'x-flag': 'burst', description: 'Requests a tenant may submit at once after a quiet spell (default: rate_per_s, at least 1)' }),
  ),
  max_queued: Type.Optional(
    Type.Integer({ minimum: 0, 'x-flag': 'max-queued', description: 'Predictions a tenant may have accepted and not yet final, across every gateway' }),
  ),
  max_waiting: Type.Optional(
    Type.Integer({
      minimum: 0,
      'x-flag': 'max-waiting',
      description: 'Connections a tenant may hold open waiting for results (Prefer: wait); past it a submission is answered 202 at once',
    }),
  ),
};

const tenantSchema = Type.Object(
  {
    ...limitFields,
    models: Type.Optional(
      Type.Record(Type.String(), Type.Object({ rate_per_s: limitFields.rate_per_s, burst: limitFields.burst }, { additionalProperties: false }), {
        description: 'Rate limits of this tenant on one model, on top of its own',
      }),
    ),
    weight: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: "This tenant's share of a model's workers against the others' when several wait (queuing: fair); default 1",
      }),
    ),
    callback_secrets: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { description: "Standard Webhooks secrets (whsec_…) that sign this tenant's callbacks, in place of callbacks.secrets" }),
    ),
  },
  { additionalProperties: false },
);

export const configSchema = Type.Object(
  {
    broker: Type.String({
      default: 'embedded',
      // Only what openBroker can open: a value refused here is refused before anything starts.
      // redis:// is checked loosely here and fully when opened, so the error names the problem.
      pattern: '^(embedded|kafka://[^/?#]+/?|rediss?://\\S*)$',
      'x-expected': '"embedded", kafka://host:port[,host:port...] or redis://host:port[/db]',
      'x-flag': 'broker',
      description: 'Queue between gateway and workers: "embedded", "kafka://host:port[,host:port...]" or "redis://host:port[/db]"',
    }),
    store: Type.String({
      default: 'sqlite',
      // Only what openStore can open; the URL itself is parsed (and a bad one named) at start.
      pattern: '^(sqlite|redis://.*)$',
      'x-expected': '"sqlite" or redis://host:port[/db]',
      'x-flag': 'store',
      description: 'Where prediction records are kept: "sqlite" (in the data folder) or "redis://host:port[/db]", shared by every gateway',
    }),
    retention_s: Type.Integer({
      minimum: 1,
      default: 86400,
      'x-flag': 'retention-s',
      description: 'Seconds a prediction record, its idempotency key and its callbacks are kept',
    }),
    data: Type.String({
      default: './data',
      'x-flag': 'data',
      description: 'Folder holding the embedded database files',
    }),
    models: Type.String({ default: './models', 'x-flag': 'models', description: 'Model repository folder' }),
    prefix: Type.String({
      default: 'spillway',
      pattern: '^[a-zA-Z0-9_-]+$',
      'x-flag': 'prefix',
      description: 'Prefix of every topic name, so several deployments can share one broker',
    }),
    log_level: stringEnum(logLevels, { default: 'info', 'x-flag': 'log-level', description: 'Log verbosity' }),
    auth: stringEnum(authModes, {
      default: 'auto',
      'x-flag': 'auth',
      description:
        'API keys: "auto" requires one as soon as any key exists (spillway keys create), "keys" always, "none" never (a gateway on a non-loopback address refuses to start without keys unless this is "none")',
    }),
    limits: Type.Object(limitFields, {
      ...section,
      description: 'Limits of every tenant (absent: none); an entry under tenants overrides them field by field, and a key may override them too (spillway keys)',
    }),
    queuing: stringEnum(queuingModes, {
      default: 'fair',
      'x-flag': 'queuing',
      description:
        'How waiting requests share a model\'s workers: "fair" gives each tenant listed under tenants a lane of its own, taken from in weighted turns, so one tenant\'s flood does not hold the others back; "fifo" queues everyone in one line (gateways and workers must agree)',
    }),
    tenants: Type.Record(Type.String({ pattern: tenantNamePattern }), tenantSchema, {
      default: {},
      'x-file-only': true,
      description:
        'Per tenant, in the config file only: limits (also per model), a fair-queuing weight, callback signing secrets; these tenants get their own queue lane and metrics label, the rest share the model\'s lane and count as "other"',
    }),
    gateway: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1', 'x-flag': 'host', description: 'Address the HTTP API listens on' }),
        port: Type.Integer({
          minimum: 0,
          maximum: 65535,
          default: 8080,
          'x-flag': 'port',
          description: 'Port the HTTP API listens on (0 picks a free port)',
        }),
        body_limit_bytes: Type.Integer({
          minimum: 1024,
          default: 1048576,
          'x-flag': 'body-limit-bytes',
          description: 'Largest request body accepted, in bytes',
        }),
        max_wait_s: Type.Number({
          exclusiveMinimum: 0,
          maximum: 3600,
          default: 60,
          'x-flag': 'max-wait-s',
          description: 'Cap on the seconds a client may ask to wait with "Prefer: wait=N"',
        }),
        max_waiters: Type.Integer({
          minimum: 0,
          default: 10000,
          'x-flag': 'max-waiters',
          description: 'Most requests held open waiting for a result at once',
        }),
      },
      { ...section, description: 'HTTP API settings' },
    ),
    worker: Type.Object(
      {
        concurrency: Type.Optional(
          Type.Integer({
            minimum: 1,
            'x-flag': 'concurrency',
            description: "Predictions run at once per model (default: each model's own setting)",
          }),
        ),
        models: Type.Optional(
          Type.Array(Type.String(), {
            'x-flag': 'worker-models',
            description: 'Models this worker serves, comma-separated (default: every model in the repository)',
          }),
        ),
        lease_ms: Type.Integer({
          minimum: 100,
          default: 30000,
          'x-flag': 'lease-ms',
          description: 'How long a taken request stays hidden from other workers before it is redelivered',
        }),
        heartbeat_ms: Type.Integer({
          minimum: 100,
          default: 2000,
          description: 'How often a worker announces itself and its models to the gateways',
        }),
        running_after_ms: Type.Integer({
          minimum: 0,
          default: 100,
          description: 'A batch still running after this long publishes the "running" status; faster ones skip it',
        }),
        drain_timeout_ms: Type.Integer({
          minimum: 0,
          default: 30000,
          description: 'On shutdown, how long to let running predictions finish',
        }),
        sync_host: Type.String({
          minLength: 1,
          default: '127.0.0.1',
          'x-flag': 'sync-host',
          description: 'Address the endpoint for dispatch: sync models listens on',
        }),
        sync_port: Type.Integer({
          minimum: 0,
          maximum: 65535,
          default: 0,
          'x-flag': 'sync-port',
          description: 'Port of that endpoint (0: any free port); workers without sync models open none',
        }),
        sync_advertise: Type.Optional(
          Type.String({
            pattern: '^https?://',
            description: 'URL gateways use to reach that endpoint, when it differs from the address it listens on',
          }),
        ),
        // Secret: loadConfig never shows its value in an error (x-sensitive), and it has no default to print.
        sync_secret: Type.Optional(
          Type.String({
            minLength: 16,
            // It travels in an HTTP header, as "Bearer <secret>".
            pattern: '^[!-~]*$',
            'x-expected': 'printable ASCII without spaces',
            'x-flag': 'sync-secret',
            'x-sensitive': true,
            description:
              'Shared secret that gateways send to that endpoint and workers check, the same on every gateway and worker of a deployment (at least 16 characters); a worker with dispatch: sync models needs it, serve makes one up when unset',
          }),
        ),
      },
      { ...section, description: 'Worker settings' },
    ),
    embedded: Type.Object(
      {
        busy_timeout_ms: Type.Integer({
          minimum: 0,
          default: 5000,
          description: 'How long SQLite waits on a lock held by another process',
        }),
        poll_ms: Type.Integer({
          minimum: 1,
          default: 2,
          description: 'How often an idle consumer checks the embedded queue for new messages, and a gateway the SQLite store for results other processes stored',
        }),
      },
      { ...section, description: 'Embedded broker and SQLite store settings' },
    ),
    kafka: Type.Object(
      {
        client_id: Type.String({ default: 'spillway', minLength: 1, description: 'Kafka client id prefix' }),
        partitions: Type.Integer({
          minimum: 1,
          default: 4,
          'x-flag': 'kafka-partitions',
          description: 'Partitions of the topics Spillway creates; at least the number of worker processes per model',
        }),
        replication_factor: Type.Integer({
          minimum: 1,
          default: 1,
          'x-flag': 'kafka-replication',
          description: 'Replicas of the topics Spillway creates (3 on a production cluster)',
        }),
      },
      { ...section, description: 'Kafka broker settings (broker: kafka://host:port)' },
    ),
    redis: Type.Object(
      {
        max_message_bytes: Type.Integer({
          minimum: 1024,
          default: 1_000_000,
          description: 'Largest request or result the Redis broker accepts; larger requests get 413 (the same default as Kafka)',
        }),
      },
      { ...section, description: 'Redis broker settings (broker: redis://host:port[/db])' },
    ),
    callbacks: Type.Object(
      {
        allow: Type.Array(Type.String(), {
          default: [],
          description: 'Callback destinations allowed despite the default refusals: host names, IP addresses, CIDR ranges',
        }),
        // SPILLWAY_CALLBACK_SECRET (singular) is read as well when the policy is built.
        secrets: Type.Array(Type.String(), {
          default: [],
          description: 'Standard Webhooks signing secrets (whsec_…); every delivery is signed with each',
        }),
        max_attempts: Type.Integer({ minimum: 1, default: 8, description: 'Delivery attempts before a callback is dead-lettered' }),
        backoff_base_ms: Type.Integer({ minimum: 1, default: 1000, description: 'First retry delay ceiling (exponential, full jitter)' }),
        backoff_cap_ms: Type.Integer({ minimum: 1, default: 300000, description: 'Largest retry delay, Retry-After included' }),
        connect_timeout_ms: Type.Integer({ minimum: 1, default: 5000, description: 'Until the connection to a receiver is up' }),
        response_timeout_ms: Type.Integer({ minimum: 1, default: 10000, description: "Until the receiver's response has arrived" }),
      },
      { ...section, description: 'Callback (webhook) delivery settings' },
    ),
    tracing: Type.Object(
      {
        otlp_endpoint: Type.Optional(
          Type.String({
            pattern: '^https?://\\S+$',
            'x-expected': 'an http:// or https:// URL, e.g. http://127.0.0.1:4318/v1/traces',
            'x-flag': 'otlp-endpoint',
            description: 'OpenTelemetry traces are exported here over OTLP/HTTP (JSON), e.g. http://127.0.0.1:4318/v1/traces; unset: tracing is off and costs nothing',
          }),
        ),
        service_name: Type.String({ default: 'spillway', minLength: 1, description: 'service.name of the spans (each process adds its role: gateway, worker)' }),
        sample_ratio: Type.Number({
          minimum: 0,
          maximum: 1,
          default: 1,
          'x-flag': 'trace-sample-ratio',
          description: "Share of new traces recorded; a request that arrives with a sampled traceparent follows its caller's decision",
        }),
      },
      { ...section, description: 'OpenTelemetry tracing across the queue (docs/tracing.md)' },
    ),
    tap: Type.Object(
      {
        name: Type.String({
          default: 'analytics',
          pattern: '^[a-zA-Z0-9_-]+$',
          'x-flag': 'tap-name',
          description: 'Name of the tap; its consumer group is tap.<name>, so several taps read the same streams independently',
        }),
        db: Type.Optional(
          Type.String({
            minLength: 1,
            'x-flag': 'tap-db',
            description: 'DuckDB file the tap writes (default: <data>/analytics.duckdb)',
          }),
        ),
        // Column names: a field that is not a plain identifier would need quoting in every query.
        metadata_fields: Type.Array(Type.String({ pattern: '^[a-zA-Z_][a-zA-Z0-9_]{0,62}$', 'x-expected': 'a field name of letters, digits and _, not starting with a digit' }), {
          default: [],
          'x-flag': 'tap-metadata-fields',
          description: 'Metadata fields the tap keeps, comma-separated; each becomes a column meta_<field>',
        }),
        batch_size: Type.Integer({
          minimum: 1,
          maximum: 10000,
          default: 512,
          description: 'Most messages the tap writes to DuckDB in one transaction',
        }),
        linger_ms: Type.Integer({
          minimum: 0,
          maximum: 60000,
          default: 500,
          'x-flag': 'tap-linger-ms',
          description: 'After a batch that was not full, wait this long before reading again: fewer, fuller reads cost serving less, and the rows arrive at most this late',
        }),
        nice: Type.Integer({
          minimum: 0,
          maximum: 19,
          default: 19,
          'x-flag': 'tap-nice',
          description: 'Scheduling priority the tap lowers every thread of itself to (as nice(1)); at 19, the lowest, it also runs in Linux\'s idle class (SCHED_IDLE), taking CPU only when serving leaves some, and falls behind instead',
        }),
      },
      { ...section, description: 'Analytics tap settings (spillway tap, docs/analytics.md)' },
    ),
  },
  { additionalProperties: false, description: 'Spillway configuration' },
);

export type SpillwayConfig = Static<typeof configSchema>;

export type ConfigLeafType = 'string' | 'number' | 'integer' | 'boolean' | 'array';
export type ConfigScalarType = Exclude<ConfigLeafType, 'array'>;

/** One setting, with the names it goes by in each source. */
export interface ConfigLeaf {
  /** Dotted path, as in the YAML file and in error pointers: `gateway.port`. */
  readonly path: string;
  readonly segments: readonly string[];
  readonly type: ConfigLeafType;
  /** For arrays, what each comma-separated item is coerced to. */
  readonly itemType?: ConfigScalarType;
  readonly description: string;
  readonly env: string;
  readonly flag?: string;
  readonly default?: string | number | boolean;
  /** The allowed values, for settings that are an enum. */
  readonly choices?: readonly string[];
}

/** The subset of JSON Schema this file uses, so the walk below needs no casts per field. */
interface SchemaNode {
  readonly type?: string;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly items?: SchemaNode;
  readonly description?: string;
  readonly default?: string | number | boolean;
  readonly enum?: readonly string[];
  readonly 'x-flag'?: string;
  readonly 'x-file-only'?: boolean;
}

const leafTypes: readonly string[] = ['string', 'number', 'integer', 'boolean', 'array'];

function asLeafType(type: string | undefined, path: string): ConfigLeafType {
  if (type !== undefined && leafTypes.includes(type)) return type as ConfigLeafType;
  throw new Error(`config schema: ${path} has unsupported type ${String(type)}`);
}

function walk(node: SchemaNode, segments: readonly string[], out: ConfigLeaf[]): void {
  // Nested per-name settings have no one environment variable or flag; the file sets them.
  if (node['x-file-only'] === true) return;
  if (node.type === 'object' && node.properties !== undefined) {
    for (const [key, child] of Object.entries(node.properties)) walk(child, [...segments, key], out);
    return;
  }
  const path = segments.join('.');
  const type = asLeafType(node.type, path);
  const itemType = type === 'array' ? asLeafType(node.items?.type, `${path}[]`) : undefined;
  if (itemType === 'array') throw new Error(`config schema: ${path} is an array of arrays`);
  out.push({
    path,
    segments,
    type,
    ...(itemType === undefined ? {} : { itemType }),
    description: node.description ?? '',
    env: `SPILLWAY_${segments.map((s) => s.toUpperCase()).join('_')}`,
    ...(node['x-flag'] === undefined ? {} : { flag: node['x-flag'] }),
    ...(node.default === undefined ? {} : { default: node.default }),
    ...(node.enum === undefined ? {} : { choices: node.enum }),
  });
}

let leaves: readonly ConfigLeaf[] | undefined;

/** Every setting, in schema order. */
export function configLeaves(): readonly ConfigLeaf[] {
  if (leaves === undefined) {
    const out: ConfigLeaf[] = [];
    // A TypeBox schema is a plain JSON Schema object, so it is a SchemaNode as it stands.
    walk(configSchema, [], out);
    leaves = Object.freeze(out);
  }
  return leaves;
}
