import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { describeError } from '../protocol/errors.js';
import { recordUpsert, requestUpsert, schemaStatements, stagingStatements, stagingTables } from './tap-schema.js';
import type { CellValue, RecordRow, RequestRow } from './tap-rows.js';

/** A JSON-safe query result row (DuckDB's big integers and timestamps as strings). */
export type QueryRow = Readonly<Record<string, string | number | boolean | null | readonly unknown[] | Readonly<Record<string, unknown>>>>;

/**
 * The tap's DuckDB file and its one writer connection. A batch goes in through the appender
 * into staging tables and then into the table by one set-based upsert per kind of row, in one
 * transaction: DuckDB is built for sets, and an upsert statement per row measured ~13 ms each
 * (7 s for a batch of 512), against milliseconds for the whole batch this way.
 */
export class AnalyticsDb {
  // Writes are chained: the readers of several topics share this one connection, and two
  // transactions cannot be open on a connection at once.
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly instance: DuckDBInstance,
    private readonly writer: DuckDBConnection,
    private readonly upserts: { readonly records: string; readonly requests: string },
  ) {}

  static async open(path: string, metadataFields: readonly string[]): Promise<AnalyticsDb> {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (error) {
      throw new Error(`cannot create the folder of the tap database ${path}; set --tap-db to a file in a writable folder`, { cause: error });
    }
    let instance: DuckDBInstance;
    try {
      // From the cache: a second open of the same file in this process (a test, a tool) shares
      // the instance instead of failing on DuckDB's file lock. One thread: a batch upsert needs
      // no more, and DuckDB's default (every core) would compete with the workers beside it.
      instance = await DuckDBInstance.fromCache(path, { threads: '1' });
    } catch (error) {
      const locked = /lock/i.test(describeError(error));
      const hint = locked
        ? 'another process has it open (a tap or a DuckDB client; a DuckDB file has one writing process): stop it, or give this tap its own file with --tap-db'
        : 'is --tap-db a DuckDB file (or a path where one may be created)?';
      throw new Error(`cannot open the tap database ${path}: ${hint}`, { cause: error });
    }
    const writer = await instance.connect();
    for (const sql of [...schemaStatements(metadataFields), ...stagingStatements(metadataFields)]) await writer.run(sql);
    return new AnalyticsDb(path, instance, writer, { records: recordUpsert(metadataFields), requests: requestUpsert(metadataFields) });
  }

  /** Writes the rows in one transaction; resolves once it committed, so the caller may ack. */
  write(records: readonly RecordRow[], requests: readonly RequestRow[]): Promise<void> {
    const next = this.queue.then(() => this.transaction(records, requests));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async transaction(records: readonly RecordRow[], requests: readonly RequestRow[]): Promise<void> {
    if (this.closed) throw new Error(`the tap database ${this.path} is closed`);
    // Staging is emptied first, so what a failed batch left there never reaches the table.
    await this.stage(stagingTables.records, records);
    await this.stage(stagingTables.requests, requests);
    await this.writer.run('BEGIN TRANSACTION');
    try {
      if (requests.length > 0) await this.writer.run(this.upserts.requests);
      if (records.length > 0) await this.writer.run(this.upserts.records);
      await this.writer.run('COMMIT');
    } catch (error) {
      await this.writer.run('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  private async stage(table: string, rows: readonly { readonly cells: readonly CellValue[] }[]): Promise<void> {
    await this.writer.run(`DELETE FROM ${table}`);
    if (rows.length === 0) return;
    const appender = await this.writer.createAppender(table, 'main', 'temp');
    try {
      for (const row of rows) {
        for (const cell of row.cells) {
          if (cell === null) appender.appendNull();
          else if (typeof cell === 'number') appender.appendDouble(cell);
          else appender.appendVarchar(cell);
        }
        appender.endRow();
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
  }

  /** Runs a read-only query on a connection of its own (tests, and tools inside this process). */
  async query(sql: string): Promise<QueryRow[]> {
    const connection = await this.instance.connect();
    try {
      return (await connection.runAndReadAll(sql)).getRowObjectsJson();
    } finally {
      connection.closeSync();
    }
  }

  /** Waits for the write in progress, then closes the file so another process may open it. */
  async close(): Promise<void> {
    await this.queue;
    if (this.closed) return;
    this.closed = true;
    this.writer.closeSync();
    this.instance.closeSync();
  }
}
