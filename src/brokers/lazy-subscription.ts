import { SubscriptionClosedError, type Broker, type SubscribeOptions, type Subscription } from './broker.js';

/**
 * Subscribes on first use, and again on the next use after a failed attempt: a broker that is
 * unreachable when a process starts delays its readers instead of stopping the process.
 */
export class LazySubscription {
  private current: Promise<Subscription> | undefined;
  private closed = false;

  constructor(
    private readonly broker: Broker,
    readonly options: SubscribeOptions,
  ) {}

  get(): Promise<Subscription> {
    if (this.closed) return Promise.reject(new SubscriptionClosedError());
    if (this.current === undefined) {
      const attempt = this.broker.subscribe(this.options);
      this.current = attempt;
      attempt.catch(() => {
        if (this.current === attempt) this.current = undefined;
      });
    }
    return this.current;
  }

  async close(): Promise<void> {
    this.closed = true;
    const current = this.current;
    this.current = undefined;
    const subscription = await current?.catch(() => undefined);
    await subscription?.close();
  }
}
