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

/** Runs inside the publishing transaction, before the messages are inserted. */
export type TopicViewWriter<M> = (messages: readonly M[]) => TopicViewUpdate<M>;

export interface TopicViewUpdate<M> {
  /** What to insert instead: the view may mark the messages it has applied. */
  readonly messages: readonly M[];
  /** Runs once the transaction has committed; never if it rolled back. */
  readonly committed: () => void;
}
