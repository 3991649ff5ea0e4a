import type { SqliteDatabase } from './open-database.js';

/**
 * Tables kept in step with one topic of a queue in the same SQLite file: the queue runs the
 * view's writes inside the transaction that publishes to the topic, so the messages and what the
 * view made of them commit together or not at all.
 */
export interface TopicView<M> {
  readonly kind: 'sqlite';
  readonly topic: string;
  /** Prepares the view's statements on the connection that publishes; called once per connection. */
  prepare(db: SqliteDatabase): TopicViewWriter<M>;
}

/**
 * Reads the messages before the transaction begins (decoding is not done holding the write
 * lock), and returns the writes to make in it.
 */
export type TopicViewWriter<M> = (messages: readonly M[]) => TopicViewUpdate<M>;

export interface TopicViewUpdate<M> {
  /** What to insert instead: the view may mark the messages it applies. */
  readonly messages: readonly M[];
  /** The view's writes: run inside the publishing transaction, before the messages go in. */
  readonly apply: () => void;
  /** Runs once the transaction has committed; never if it rolled back. */
  readonly committed: () => void;
}
