import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/sqlite/group-commit.js';
import { openDatabase, type SqliteDatabase } from '../../src/sqlite/open-database.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  let dir: string;
  let db: SqliteDatabase;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'spillway-group-commit-'));
    db = openDatabase(join(dir, 'test.db'), { durability: 'full', busyTimeoutMs: 1000 });
    db.exec('CREATE TABLE items (n INTEGER NOT NULL)');
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const committer = (minIntervalMs: number, now: () => number) => {
    const insert = db.prepare('INSERT INTO items (n) VALUES (?)');
    return new GroupCommit<number>(db, (items) => items.forEach((n) => insert.run(n)), { minIntervalMs, now });
  };
  const count = () => db.prepare('SELECT COUNT(*) FROM items').pluck().get();

  it('commits the writes of one turn together, and the first write after a quiet spell on the next turn', async () => {
    const gc = committer(1000, () => 0);
    // Never committed: no interval to wait out.
    await Promise.all([gc.submit(1), gc.submit(2), gc.submit(3)]);
    expect(gc.commitCount).toBe(1);
    expect(count()).toBe(3);
  });

  it('under load, lets the writes of later turns join one commit until the interval since the last has passed', async () => {
    let clock = 0;
    const gc = committer(1000, () => clock);
    await Promise.all([gc.submit(0), gc.submit(1)]); // two writes in one commit at clock 0: under load
    clock = 10; // 10 ms later: within the interval, so the next write waits for the rest of it
    const writes = [gc.submit(2)];
    await nextTurn();
    writes.push(gc.submit(3));
    await nextTurn();
    writes.push(gc.submit(4));
    expect(gc.commitCount).toBe(1);
    await Promise.all(writes);
    expect(gc.commitCount).toBe(2);
    expect(count()).toBe(5);
  });

  it('does not hold a write back after a commit of one write: a lightly loaded path waits for nothing', async () => {
    const gc = committer(1000, () => 0);
    await gc.submit(1);
    const write = gc.submit(2); // within the interval, but the last commit held one write
    await nextTurn(); // the commit was due on the turn the write came in, not 1000 ms later
    expect(gc.commitCount).toBe(2);
    await write;
  });

  it('commits every turn when the interval is 0', async () => {
    const gc = committer(0, () => 0);
    await gc.submit(1);
    await gc.submit(2);
    expect(gc.commitCount).toBe(2);
  });

  it('rejects every write of a transaction that fails, and commits later writes', async () => {
    const insert = db.prepare('INSERT INTO items (n) VALUES (?)');
    const gc = new GroupCommit<number>(db, (items) => items.forEach((n) => insert.run(n < 0 ? null : n)), { minIntervalMs: 0 });
    const results = await Promise.allSettled([gc.submit(1), gc.submit(-1)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await gc.submit(2);
    expect(db.prepare('SELECT n FROM items').pluck().all()).toEqual([2]);
  });

  it('waits for a write lock another connection holds without stopping the thread, and commits once it is free', async () => {
    const waiting = openDatabase(join(dir, 'test.db'), { durability: 'full', busyTimeoutMs: 0 });
    const insert = waiting.prepare('INSERT INTO items (n) VALUES (?)');
    const gc = new GroupCommit<number>(waiting, (items) => items.forEach((n) => insert.run(n)), { retryWhileBusyMs: 60_000 });
    db.exec('BEGIN IMMEDIATE');
    const written = Promise.all([gc.submit(1), gc.submit(2)]);
    // The thread goes on while the batch waits: timers fire, and later writes join the batch.
    let turns = 0;
    while (turns < 50) {
      await nextTurn();
      turns += 1;
    }
    const late = gc.submit(3);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(count()).toBe(0);
    db.exec('COMMIT');
    await Promise.all([written, late]);
    expect(db.prepare('SELECT n FROM items ORDER BY n').pluck().all()).toEqual([1, 2, 3]);
    expect(gc.commitCount).toBe(1);
    waiting.close();
  });

  it('fails the writes once the lock stays taken past retryWhileBusyMs, and commits later ones', async () => {
    const waiting = openDatabase(join(dir, 'test.db'), { durability: 'full', busyTimeoutMs: 0 });
    const insert = waiting.prepare('INSERT INTO items (n) VALUES (?)');
    const gc = new GroupCommit<number>(waiting, (items) => items.forEach((n) => insert.run(n)), { retryWhileBusyMs: 30 });
    db.exec('BEGIN IMMEDIATE');
    await expect(gc.submit(1)).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
    db.exec('COMMIT');
    await gc.submit(2);
    expect(db.prepare('SELECT n FROM items').pluck().all()).toEqual([2]);
    waiting.close();
  });
});
