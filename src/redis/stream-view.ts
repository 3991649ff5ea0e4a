import type { RedisAddress } from './redis-url.js';

/**
 * Keys kept in step with one topic of the Redis broker, on the same server and database: the
 * broker runs the view's Lua inside the script that adds the topic's entries, so the entries and
 * what the view made of them are one step for Redis (and one transaction in its append-only
 * file). A broker on another server or database passes the view over.
 */
export interface StreamView<M> {
  readonly kind: 'redis';
  readonly topic: string;
  readonly address: RedisAddress;
  /**
   * A Lua chunk run before the entries are added, with its own KEYS and ARGV (those `write`
   * gives); what it returns is handed to `committed`. An error in it stops the script before
   * anything is added.
   */
  readonly lua: string;
  write(messages: readonly M[]): StreamViewWrite<M>;
}

export interface StreamViewWrite<M> {
  readonly keys: readonly string[];
  readonly args: readonly (string | number)[];
  /** What to add instead: the view may mark the messages it has applied. */
  readonly messages: readonly M[];
  /** Runs with the chunk's reply once the script has run; never if it failed. */
  readonly committed: (reply: unknown) => void;
}
