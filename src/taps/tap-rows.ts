import type { RequestEnvelope } from '../protocol/envelope.js';
import { storeRank, supersedes, type PredictionRecord } from '../protocol/prediction.js';

/**
 * What a tap keeps of each message, as plain values in column order (tap-schema.ts), so the
 * DuckDB side binds them without knowing the protocol and this side is testable without DuckDB.
 */

/** A value a tap binds to a column: DuckDB's VARCHAR, DOUBLE, INTEGER or NULL. */
export type CellValue = string | number | null;

/** The columns a response record fills, in the order of `recordColumns`. */
export interface RecordRow {
  readonly id: string;
  readonly cells: readonly CellValue[];
}

/** The columns a request message fills, in the order of `requestColumns`. */
export interface RequestRow {
  readonly id: string;
  readonly cells: readonly CellValue[];
}

const encoder = new TextEncoder();

/** UTF-8 bytes of a value as JSON: what it weighs on the wire, the size worth charting. */
export function jsonBytes(value: unknown): number | null {
  if (value === undefined) return null;
  return encoder.encode(JSON.stringify(value)).length;
}

/**
 * An ISO timestamp DuckDB casts to TIMESTAMP (UTC), or null: a malformed one must not fail the
 * whole batch, or the batch would be redelivered for ever and the tap would stall.
 */
export function timestampCell(value: string | undefined): string | null {
  if (value === undefined) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** A metadata value as a VARCHAR cell: strings as they are, anything else as its JSON. */
export function metadataCell(metadata: Readonly<Record<string, unknown>> | undefined, field: string): string | null {
  if (metadata === undefined || !Object.hasOwn(metadata, field)) return null;
  const value = metadata[field];
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

const num = (value: number | undefined): number | null => (value === undefined ? null : value);

/**
 * `steps` is the per-step timing array pipelines add to the record. It is read by name, not
 * through the record's type, so a tap built before pipelines keeps it (as JSON) once it appears.
 */
function stepsCell(record: PredictionRecord): string | null {
  const steps = (record as { readonly steps?: unknown }).steps;
  return steps === undefined || steps === null ? null : JSON.stringify(steps);
}

export function recordRow(record: PredictionRecord, metadataFields: readonly string[]): RecordRow {
  const m = record.metrics;
  return {
    id: record.id,
    cells: [
      record.id,
      record.model,
      record.status,
      storeRank(record),
      record.replay ?? 0,
      timestampCell(record.created_at),
      timestampCell(record.started_at),
      timestampCell(record.completed_at),
      num(m.queue_ms),
      num(m.decode_ms),
      num(m.preprocess_ms),
      num(m.inference_ms),
      num(m.postprocess_ms),
      num(m.total_ms),
      record.attempts,
      record.worker ?? null,
      record.error?.code ?? null,
      jsonBytes(record.output),
      stepsCell(record),
      ...metadataFields.map((f) => metadataCell(record.metadata, f)),
    ],
  };
}

export function requestRow(envelope: RequestEnvelope, metadataFields: readonly string[]): RequestRow {
  return {
    id: envelope.id,
    cells: [
      envelope.id,
      // A pipeline's first step: the row is the pipeline's, as its records are.
      envelope.pipeline?.name ?? envelope.model,
      timestampCell(envelope.created_at),
      jsonBytes(envelope.input),
      ...metadataFields.map((f) => metadataCell(envelope.metadata, f)),
    ],
  };
}

/**
 * One record per id from a batch, the one the store would keep (first terminal wins, a replay
 * starts over): DuckDB refuses to upsert the same key twice in one statement, and fewer
 * statements make a shorter transaction.
 */
export function latestPerId(records: readonly PredictionRecord[]): PredictionRecord[] {
  const byId = new Map<string, PredictionRecord>();
  for (const record of records) {
    if (supersedes(record, byId.get(record.id))) byId.set(record.id, record);
  }
  return [...byId.values()];
}
