/**
 * The tap's table, `predictions`: one row per prediction id. Column order here is the order
 * tap-rows.ts fills cells in; docs/analytics.md describes each column.
 */

export const tableName = 'predictions';

/** Columns a response record owns: the row takes all of them from whichever record wins. */
export const recordColumns = [
  ['id', 'VARCHAR PRIMARY KEY'],
  ['model', 'VARCHAR'],
  ['status', 'VARCHAR'],
  // storeRank of the record: how the upsert tells which record wins without reading the row.
  ['status_rank', 'INTEGER'],
  ['replay', 'INTEGER'],
  ['created_at', 'TIMESTAMP'],
  ['started_at', 'TIMESTAMP'],
  ['completed_at', 'TIMESTAMP'],
  ['queue_ms', 'DOUBLE'],
  ['decode_ms', 'DOUBLE'],
  ['preprocess_ms', 'DOUBLE'],
  ['inference_ms', 'DOUBLE'],
  ['postprocess_ms', 'DOUBLE'],
  ['total_ms', 'DOUBLE'],
  ['attempts', 'INTEGER'],
  ['worker', 'VARCHAR'],
  ['error_code', 'VARCHAR'],
  ['output_bytes', 'BIGINT'],
  ['steps', 'JSON'],
] as const;

/** Columns only the request message knows, beyond those it shares with the record. */
export const requestOnlyColumns = [['input_bytes', 'BIGINT']] as const;

/** The columns a request message fills, in cell order (metadata columns follow). */
export const requestColumns = ['id', 'model', 'created_at', 'input_bytes'] as const;

/** The column a configured metadata field becomes; the prefix keeps it clear of the fixed ones. */
export function metadataColumn(field: string): string {
  return `meta_${field}`;
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * CREATE TABLE, then one ADD COLUMN per metadata field: a field named in config later joins an
 * existing file instead of needing a new one (earlier rows hold NULL there).
 */
export function schemaStatements(metadataFields: readonly string[]): string[] {
  const columns = [...recordColumns, ...requestOnlyColumns].map(([name, type]) => `${quote(name)} ${type}`);
  return [
    `CREATE TABLE IF NOT EXISTS ${tableName} (${columns.join(', ')})`,
    ...metadataFields.map((f) => `ALTER TABLE ${tableName} ADD COLUMN IF NOT EXISTS ${quote(metadataColumn(f))} VARCHAR`),
  ];
}

/**
 * Staging tables, one per kind of row, private to the writer's connection (TEMP): the appender
 * fills them fast, and one set-based upsert per batch moves them into the table. Cells arrive as
 * text or numbers, so staging keeps VARCHAR and DOUBLE and the upsert casts to the real types.
 */
export const stagingTables = { records: 'tap_staging_records', requests: 'tap_staging_requests' } as const;

const stagingType = (type: string) => (/^(INTEGER|BIGINT|DOUBLE)/.test(type) ? 'DOUBLE' : 'VARCHAR');
const columnType = new Map<string, string>([...recordColumns, ...requestOnlyColumns].map(([name, type]) => [name, type.replace(' PRIMARY KEY', '')]));

export function recordColumnNames(metadataFields: readonly string[]): string[] {
  return [...recordColumns.map(([name]) => name), ...metadataFields.map(metadataColumn)];
}

export function requestColumnNames(metadataFields: readonly string[]): string[] {
  return [...requestColumns, ...metadataFields.map(metadataColumn)];
}

export function stagingStatements(metadataFields: readonly string[]): string[] {
  const table = (name: string, columns: readonly string[]) =>
    `CREATE OR REPLACE TEMP TABLE ${name} (${columns.map((c) => `${quote(c)} ${stagingType(columnType.get(c) ?? 'VARCHAR')}`).join(', ')})`;
  return [table(stagingTables.records, recordColumnNames(metadataFields)), table(stagingTables.requests, requestColumnNames(metadataFields))];
}

/** A staged column read back in its real type (JSON and VARCHAR stay text). */
const fromStaging = (column: string) => {
  const type = columnType.get(column) ?? 'VARCHAR';
  return type === 'VARCHAR' || type === 'JSON' ? quote(column) : `CAST(${quote(column)} AS ${type})`;
};

/**
 * Upsert of the staged response records. The record that wins is the one `supersedes` would
 * keep (higher storeRank, or a later attempt's `running`), so a second terminal record changes
 * nothing and a redelivered message rewrites the row with the values it already has.
 * Request-only columns are left alone.
 */
export function recordUpsert(metadataFields: readonly string[]): string {
  const columns = recordColumnNames(metadataFields);
  const wins =
    `(excluded.status_rank > coalesce(${tableName}.status_rank, -1) OR ` +
    `(excluded.status_rank = ${tableName}.status_rank AND excluded.status = 'running' AND excluded.attempts > ${tableName}.attempts))`;
  const set = columns
    .filter((c) => c !== 'id')
    .map((c) => {
      const q = quote(c);
      // Metadata also comes with the request: a record without the field must not erase it.
      const next = c.startsWith('meta_') ? `coalesce(excluded.${q}, ${tableName}.${q})` : `excluded.${q}`;
      return `${q} = CASE WHEN ${wins} THEN ${next} ELSE ${tableName}.${q} END`;
    });
  return (
    `INSERT INTO ${tableName} (${columns.map(quote).join(', ')}) SELECT ${columns.map(fromStaging).join(', ')} FROM ${stagingTables.records} ` +
    `ON CONFLICT (id) DO UPDATE SET ${set.join(', ')}`
  );
}

/** Upsert of the staged request messages: they fill what is still empty and never overwrite a record's values. */
export function requestUpsert(metadataFields: readonly string[]): string {
  const columns = requestColumnNames(metadataFields);
  const set = columns.filter((c) => c !== 'id').map((c) => `${quote(c)} = coalesce(${tableName}.${quote(c)}, excluded.${quote(c)})`);
  return (
    `INSERT INTO ${tableName} (${columns.map(quote).join(', ')}) SELECT ${columns.map(fromStaging).join(', ')} FROM ${stagingTables.requests} ` +
    `ON CONFLICT (id) DO UPDATE SET ${set.join(', ')}`
  );
}
