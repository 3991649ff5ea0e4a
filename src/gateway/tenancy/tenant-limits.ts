import { SpillwayError } from '../../protocol/errors.js';
import type { PredictionRecord } from '../../protocol/prediction.js';
import { defaultTenant } from '../../protocol/tenancy.js';
import type { LimitState, RateBucket, RateBucketState } from '../../stores/store.js';
import type { Caller } from './authenticator.js';

/** Limits as the config file states them (snake_case, as in spillway.yaml). */
export interface LimitSettings {
  readonly rate_per_s?: number;
  readonly burst?: number;
  readonly max_queued?: number;
  readonly max_waiting?: number;
}

export interface TenantSettings extends LimitSettings {
  readonly models?: Readonly<Record<string, Pick<LimitSettings, 'rate_per_s' | 'burst'>>>;
}

export interface TenantLimitsOptions {
  readonly state: LimitState;
  /** Every tenant's limits, unless it has its own entry in `tenants`. */
  readonly defaults: LimitSettings;
  readonly tenants: Readonly<Record<string, TenantSettings>>;
  /** How long an open prediction without a deadline may hold its tenant's place: the record retention. */
  readonly retentionMs: number;
}

/** The headers that tell a client its rate limit (draft-ietf-httpapi-ratelimit-headers). */
export type RateLimitHeaders = Readonly<Record<'ratelimit-policy' | 'ratelimit', string>>;

/** A place a submission holds in a capped set until it gives it back. */
export interface HeldPlace {
  release(): Promise<void>;
}

/**
 * Per-tenant limits, with their state in the shared store so that they hold across gateways:
 * a request rate (token bucket, also per model), a cap on predictions open (accepted and not
 * final) and a cap on connections held waiting. A key with limits of its own is limited as a
 * subject of its own (`key:<id>`), with its tenant's values for whatever it does not set.
 */
export class TenantLimits {
  /** Whether any open-prediction cap exists, so a final record has a place to give back. */
  private readonly capsOpen: boolean;

  /** Whether any limit is configured at all (a key's own limits come with its caller). */
  private readonly configured: boolean;
  /** Each configured tenant's limits, with everyone's for the fields its entry leaves out. */
  private readonly tenantLimits: ReadonlyMap<string, LimitSettings>;

  constructor(private readonly o: TenantLimitsOptions) {
    this.capsOpen = o.defaults.max_queued !== undefined || Object.values(o.tenants).some((t) => t.max_queued !== undefined);
    const any = (l: LimitSettings & { models?: object }) =>
      l.rate_per_s !== undefined || l.max_queued !== undefined || l.max_waiting !== undefined || (l.models !== undefined && Object.keys(l.models).length > 0);
    this.configured = any(o.defaults) || Object.values(o.tenants).some(any);
    const d = o.defaults;
    this.tenantLimits = new Map(
      Object.entries(o.tenants).map(([name, t]) => [
        name,
        { rate_per_s: t.rate_per_s ?? d.rate_per_s, burst: t.burst ?? d.burst, max_queued: t.max_queued ?? d.max_queued, max_waiting: t.max_waiting ?? d.max_waiting },
      ]),
    );
  }

  /**
   * Whether any limit may apply to `caller`; when not, a submission skips every limit step
   * (and the store), so a deployment without limits pays nothing for them.
   */
  appliesTo(caller: Caller): boolean {
    return this.configured || caller.keyLimits !== undefined;
  }

  /**
   * Takes a token for one request of `caller` to `model`, or throws SPILLWAY_RATE_LIMITED with
   * Retry-After. Resolves the RateLimit headers to send, or undefined when no rate applies.
   */
  async checkRate(caller: Caller, model: string): Promise<RateLimitHeaders | undefined> {
    const limits = this.limitsOf(caller);
    const buckets: RateBucket[] = [];
    const policies: string[] = [];
    if (limits.rate_per_s !== undefined) {
      buckets.push(bucket(`rate:${subjectOf(caller)}`, limits.rate_per_s, limits.burst));
      policies.push('tenant');
    }
    const perModel = this.o.tenants[caller.tenant]?.models?.[model];
    if (perModel?.rate_per_s !== undefined) {
      buckets.push(bucket(`rate:tenant:${caller.tenant}:model:${model}`, perModel.rate_per_s, perModel.burst));
      policies.push('model');
    }
    if (buckets.length === 0) return undefined;
    let decision;
    try {
      decision = await this.o.state.takeTokens(buckets);
    } catch (error) {
      throw new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', 'the rate limit could not be checked', { cause: error });
    }
    const headers = rateLimitHeaders(policies, buckets, decision.buckets);
    if (!decision.allowed) {
      throw new SpillwayError('SPILLWAY_RATE_LIMITED', `tenant ${caller.tenant} is over its rate limit; try again in ${Math.ceil(decision.retryAfterMs / 1000)} s`, {
        retryAfterS: decision.retryAfterMs / 1000,
        headers,
      });
    }
    return headers;
  }

  /**
   * A place among `caller`'s open predictions for prediction `id`, until it is final (or,
   * should nothing ever say so, until its deadline or the record retention has passed);
   * SPILLWAY_TENANT_QUEUE_FULL when there is none. Undefined when no cap applies.
   */
  async openPlace(caller: Caller, id: string, deadline: string | undefined): Promise<HeldPlace | undefined> {
    const cap = this.limitsOf(caller).max_queued;
    if (cap === undefined) return undefined;
    const expiresAt = deadline === undefined ? Date.now() + this.o.retentionMs : Date.parse(deadline) + expiryGraceMs;
    const set = `open:${subjectOf(caller)}`;
    const joined = await this.join(set, id, cap, expiresAt);
    if (!joined) {
      throw new SpillwayError('SPILLWAY_TENANT_QUEUE_FULL', `tenant ${caller.tenant} already has ${cap} predictions open (its max_queued)`, { retryAfterS: 1 });
    }
    return { release: () => this.leave(set, [id]) };
  }

  /**
   * A place among `caller`'s held connections while it waits up to `waitMs` for prediction
   * `id`; undefined when none is free (the client is then answered 202 at once, which
   * `Prefer: wait` allows) or when no cap applies (`unlimited`).
   */
  async waitingPlace(caller: Caller, id: string, waitMs: number): Promise<HeldPlace | 'unlimited' | undefined> {
    const cap = this.limitsOf(caller).max_waiting;
    if (cap === undefined) return 'unlimited';
    const set = `waiting:${subjectOf(caller)}`;
    // A gateway that dies while holding the connection frees the place when the wait would have ended.
    const joined = await this.join(set, id, cap, Date.now() + waitMs + 1000);
    return joined ? { release: () => this.leave(set, [id]) } : undefined;
  }

  /** Final records this process stored: their open places are given back. */
  async finished(records: readonly PredictionRecord[]): Promise<void> {
    const bySet = new Map<string, string[]>();
    const add = (set: string, id: string) => {
      const ids = bySet.get(set);
      if (ids === undefined) bySet.set(set, [id]);
      else ids.push(id);
    };
    for (const r of records) {
      if (this.capsOpen) add(`open:tenant:${r.tenant ?? defaultTenant}`, r.id);
      // Keys may carry caps of their own, which only the store knows of.
      if (r.api_key !== undefined) add(`open:key:${r.api_key}`, r.id);
    }
    await Promise.all([...bySet].map(([set, ids]) => this.leave(set, ids)));
  }

  /** The limits that apply to `caller`: its key's, over its tenant's, over everyone's, field by field. */
  private limitsOf(caller: Caller): LimitSettings {
    const tenant = this.tenantLimits.get(caller.tenant) ?? this.o.defaults;
    const key = caller.keyLimits;
    if (key === undefined) return tenant;
    return {
      rate_per_s: key.ratePerS ?? tenant.rate_per_s,
      burst: key.burst ?? tenant.burst,
      max_queued: key.maxQueued ?? tenant.max_queued,
      max_waiting: key.maxWaiting ?? tenant.max_waiting,
    };
  }

  private async join(set: string, member: string, cap: number, expiresAt: number): Promise<boolean> {
    try {
      return (await this.o.state.joinCapped(set, member, cap, expiresAt)).joined;
    } catch (error) {
      throw new SpillwayError('SPILLWAY_STORE_UNAVAILABLE', 'the tenant limits could not be checked', { cause: error });
    }
  }

  private async leave(set: string, members: readonly string[]): Promise<void> {
    // A place not given back frees itself when it expires; a failure here must not fail a request.
    await this.o.state.leaveCapped(set, members).catch(() => undefined);
  }
}

/** A prediction past its deadline is expired within this (the gateway's expiry grace and then some). */
const expiryGraceMs = 5000;

/** Whose state a caller's limits count in: its key's, if the key has limits of its own. */
function subjectOf(caller: Caller): string {
  return caller.keyLimits !== undefined && caller.keyId !== undefined ? `key:${caller.keyId}` : `tenant:${caller.tenant}`;
}

function bucket(name: string, ratePerS: number, burst: number | undefined): RateBucket {
  return { name, ratePerS, burst: burst ?? Math.max(1, Math.ceil(ratePerS)) };
}

/**
 * One policy per bucket: its quota is the bucket's size and its window the time to refill it,
 * the closest a token bucket comes to the draft's quota-per-window.
 */
function rateLimitHeaders(policies: readonly string[], buckets: readonly RateBucket[], states: readonly RateBucketState[]): RateLimitHeaders {
  return {
    'ratelimit-policy': buckets.map((b, i) => `"${policies[i]}";q=${b.burst};w=${windowS(b)}`).join(', '),
    ratelimit: states.map((s, i) => `"${policies[i]}";r=${s.remaining};t=${Math.ceil(s.resetMs / 1000)}`).join(', '),
  };
}

function windowS(b: RateBucket): number {
  return b.ratePerS > 0 ? Math.max(1, Math.ceil(b.burst / b.ratePerS)) : 86_400;
}
