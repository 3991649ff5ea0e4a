import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

export interface OpenOptions {
  /**
   * `full` fsyncs the write-ahead log at every commit: a committed transaction survives power
   * loss. `normal` defers the fsync to checkpoints: it survives a process crash but a power loss
   * may drop the last commits. Use `normal` only for state whose loss is repaired by redelivery.
   */
  readonly durability: 'full' | 'normal';
  /**
   * How long a writer waits for another connection's write lock before failing (SQLite sleeps
   * the thread meanwhile); 0 fails at once, for a caller that retries without blocking
   * (GroupCommit's retryWhileBusyMs).
   */
  readonly busyTimeoutMs: number;
  /** How long opening (the switch to WAL) waits out another process's; default busyTimeoutMs. */
  readonly openTimeoutMs?: number;
}

export function openDatabase(path: string, options: OpenOptions): SqliteDatabase {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: options.busyTimeoutMs });
  // WAL lets readers in other processes proceed while one process writes.
  whileBusy(options.openTimeoutMs ?? options.busyTimeoutMs, () => db.pragma('journal_mode = WAL'));
  db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
  // A larger page cache and memory-mapped reads keep hot pages out of read() system calls.
  db.pragma('cache_size = -65536');
  db.pragma('mmap_size = 268435456');
  return db;
}

/**
 * Runs `step` again while SQLite answers SQLITE_BUSY, for up to `timeoutMs`: for what a process
 * does once as it opens a database (the switch to WAL, the schema), where another process opening
 * the same file at that moment can make SQLite answer busy without waiting (while it recovers
 * the log, say), and a process that gave up there would fail to start. Blocks the thread between
 * attempts: this runs at start, before anything is served.
 */
export function whileBusy<T>(timeoutMs: number, step: () => T): T {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
    try {
      return step();
    } catch (error) {
      if (!isBusy(error) || Date.now() + pause > deadline) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause);
    }
  }
}

export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}
