import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { describeError } from '../protocol/errors.js';
import { recordUpsert, requestUpsert, schemaStatements } from './tap-schema.js';
import type { RecordRow, RequestRow } from './tap-rows.js';

/** A JSON-safe query result row (DuckDB's big integers and timestamps as strings). */
export type QueryRow = Readonly<Record<string, string | number | boolean | null | readonly unknown[] | Readonly<Record<string, unknown>>>>;

/**
 * The tap's DuckDB file: one writer connection with the two upserts prepared once, and a write
 * per batch in one transaction. DuckDB inserts row by row are slow in autocommit (a commit
 * each); inside one transaction a batch of 512 prepared upserts takes milliseconds.
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
    private readonly upsertRecord: DuckDBPreparedStatement,
    private readonly upsertRequest: DuckDBPreparedStatement,
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
      // the instance instead of failing on DuckDB's file lock.
      instance = await DuckDBInstance.fromCache(path);
    } catch (error) {
      const locked = /lock/i.test(describeError(error));
      const hint = locked
        ? 'another process has it open (a tap or a DuckDB client; a DuckDB file has one writing process): stop it, or give this tap its own file with --tap-db'
        : 'is --tap-db a DuckDB file (or a path where one may be created)?';
      throw new Error(`cannot open the tap database ${path}: ${hint}`, { cause: error });
    }
    const writer = await instance.connect();
    for (const sql of schemaStatements(metadataFields)) await writer.run(sql);
    const upsertRecord = await writer.prepare(recordUpsert(metadataFields));
    const upsertRequest = await writer.prepare(requestUpsert(metadataFields));
    return new AnalyticsDb(path, instance, writer, upsertRecord, upsertRequest);
  }

  /** Writes the rows in one transaction; resolves once it committed, so the caller may ack. */
  write(records: readonly RecordRow[], requests: readonly RequestRow[]): Promise<void> {
    const next = this.queue.then(() => this.transaction(records, requests));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async transaction(records: readonly RecordRow[], requests: readonly RequestRow[]): Promise<void> {
    if (this.closed) throw new Error(`the tap database ${this.path} is closed`);
    await this.writer.run('BEGIN TRANSACTION');
    try {
      for (const row of requests) {
        this.upsertRequest.bind([...row.cells]);
        await this.upsertRequest.run();
      }
      for (const row of records) {
        this.upsertRecord.bind([...row.cells]);
        await this.upsertRecord.run();
      }
      await this.writer.run('COMMIT');
    } catch (error) {
      await this.writer.run('ROLLBACK').catch(() => undefined);
      throw error;
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
    this.upsertRecord.destroySync();
    this.upsertRequest.destroySync();
    this.writer.closeSync();
    this.instance.closeSync();
  }
}
