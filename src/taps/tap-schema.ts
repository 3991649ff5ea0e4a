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

const timestampColumns: ReadonlySet<string> = new Set(['created_at', 'started_at', 'completed_at']);

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

const placeholder = (column: string, index: number) =>
  timestampColumns.has(column) ? `CAST($${index + 1} AS TIMESTAMP)` : `$${index + 1}`;

/**
 * Upsert of a response record. The record that wins is the one `supersedes` would keep (higher
 * storeRank, or a later attempt's `running`), so a second terminal record changes nothing and a
 * redelivered message rewrites the row with the values it already has. Request-only columns are
 * left alone.
 */
export function recordUpsert(metadataFields: readonly string[]): string {
  const columns = [...recordColumns.map(([name]) => name), ...metadataFields.map(metadataColumn)];
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
    `INSERT INTO ${tableName} (${columns.map(quote).join(', ')}) VALUES (${columns.map(placeholder).join(', ')}) ` +
    `ON CONFLICT (id) DO UPDATE SET ${set.join(', ')}`
  );
}

/** Upsert of a request message: it fills what is still empty and never overwrites a record's values. */
export function requestUpsert(metadataFields: readonly string[]): string {
  const columns = [...requestColumns, ...metadataFields.map(metadataColumn)];
  const set = columns.filter((c) => c !== 'id').map((c) => `${quote(c)} = coalesce(${tableName}.${quote(c)}, excluded.${quote(c)})`);
  return (
    `INSERT INTO ${tableName} (${columns.map(quote).join(', ')}) VALUES (${columns.map(placeholder).join(', ')}) ` +
    `ON CONFLICT (id) DO UPDATE SET ${set.join(', ')}`
  );
}
