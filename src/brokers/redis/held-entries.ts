import type { Redis } from '../../redis/connect.js';
import { resetIdleScript } from './lua-scripts.js';
import { returnedConsumer } from './redis-keys.js';
import { stringList } from './stream-replies.js';

/** Idle time given to entries handed back at close: past any lease, so any consumer takes them now. */
const handBackIdleMs = 365 * 24 * 3600 * 1000;

export interface LeaseTarget {
  readonly key: string;
  readonly group: string;
  readonly consumer: string;
  readonly leaseMs: number;
  /** Runs a command when the connection is ready; rejects otherwise. */
  readonly attempt: <T>(step: (redis: Redis) => Promise<T>) => Promise<T>;
  /** Called when a nacked entry becomes claimable, so a blocked read looks again at once. */
  readonly wake: () => void;
}

/**
 * The entries this consumer holds in the group's pending list, and their leases.
 *
 * Redis has no lease: an entry stays pending to its consumer until acked, and XAUTOCLAIM lets
 * another consumer take it once it has been idle for `leaseMs`. So a live holder resets the idle
 * time of what it holds every leaseMs/3; a dead one stops, and its entries become claimable a
 * lease after its last renewal. A nack sets the idle time so that the entry becomes claimable
 * exactly `delayMs` from now, and stops renewing it.
 */
export class HeldEntries {
  /** Held and renewed: out with a caller, or read and not yet handed out. */
  private readonly held = new Set<string>();
  /** Nacked, not renewed: when each becomes claimable (for hand-back at close). */
  private readonly delayed = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly renewer: NodeJS.Timeout;

  constructor(private readonly t: LeaseTarget) {
    this.renewer = setInterval(() => void this.renew().catch(() => undefined), Math.max(20, Math.floor(t.leaseMs / 3)));
    this.renewer.unref();
  }

  add(ids: readonly string[]): void {
    for (const id of ids) {
      this.held.add(id);
      this.delayed.delete(id);
    }
  }

  has(id: string): boolean {
    return this.held.has(id);
  }

  forget(id: string): void {
    this.held.delete(id);
    this.delayed.delete(id);
  }

  /** Renews every held entry; entries found no longer ours (reclaimed elsewhere, acked) are dropped. */
  async renew(): Promise<void> {
    const ids = [...this.held];
    if (ids.length === 0) return;
    const owned = new Set(await this.resetIdle(this.t.consumer, 0, ids));
    for (const id of ids) if (!owned.has(id)) this.held.delete(id);
  }

  async nack(id: string, delayMs: number): Promise<void> {
    if (!this.held.has(id)) return;
    const lease = this.t.leaseMs;
    const now = Date.now();
    if (delayMs <= lease) {
      await this.release(id, lease - delayMs, now + delayMs);
    } else {
      // An idle time cannot be negative: keep renewing until a lease before the delay ends.
      this.later(delayMs - lease, () => void this.release(id, 0, now + delayMs).catch(() => undefined));
    }
    this.later(delayMs, this.t.wake);
  }

  /** Gives everything back to the group at once (close): held, and nacked with their delays kept. */
  async handBack(): Promise<void> {
    clearInterval(this.renewer);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const now = Date.now();
    if (this.held.size > 0) await this.resetIdle(returnedConsumer, handBackIdleMs, [...this.held]);
    for (const [id, visibleAt] of this.delayed) {
      await this.resetIdle(returnedConsumer, Math.max(0, this.t.leaseMs - Math.max(0, visibleAt - now)), [id]);
    }
    this.held.clear();
    this.delayed.clear();
  }

  stop(): void {
    clearInterval(this.renewer);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private async release(id: string, idleMs: number, visibleAt: number): Promise<void> {
    if (!this.held.has(id)) return;
    this.held.delete(id);
    this.delayed.set(id, visibleAt);
    await this.resetIdle(this.t.consumer, idleMs, [id]);
  }

  private later(ms: number, step: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      step();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private async resetIdle(to: string, idleMs: number, ids: readonly string[]): Promise<string[]> {
    const reply = await this.t.attempt((r) =>
      r.eval(resetIdleScript, 1, this.t.key, this.t.group, this.t.consumer, to, Math.round(idleMs), ...ids),
    );
    return stringList(reply, 'lease renewal');
  }
}
