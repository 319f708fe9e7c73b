import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { Counter } from '@opentelemetry/api';
import { RunnerConfig } from '../config/runner-config.js';
import { MetricService } from 'nestjs-otel';
import { LabelGuard } from '../common/label-guard.js';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import { CoordinationUnavailableError, RateLimitedError } from './rate-limit.errors.js';
import {
  RATE_LIMIT_STORE,
  type BucketRequest,
  type RateDecision,
  type RateLimitStore,
} from './rate-limiter.js';

/**
 * Where a message is counted: `http` when a webhook is accepted, `bus` when an ingress message is
 * taken off the bus. Separate buckets with the same policy: a webhook message passes both, and the
 * bus one only bites when consumers bunch messages up (a backlog) or a platform publishes to the
 * bus directly, which is exactly when processing must be smoothed.
 */
export type RateScope = 'http' | 'bus';

/** Providers whose messages are the runner's own doing, not inbound traffic: never limited. */
const EXEMPT_PROVIDERS = new Set(['timer']);
const UNAVAILABLE_LOG_EVERY_MS = 10_000;

/**
 * Token buckets per tenant and per channel, from the bundle's `rate_limit` keys. A message takes a
 * token from its tenant's bucket and its channel's bucket at once (either both or neither).
 * When the store (Redis) cannot answer, the message is let through: a limit outage must not
 * become a message outage. It is logged and counted.
 */
@Injectable()
export class RateLimitService {
  private readonly logger = new Logger(RateLimitService.name);
  private readonly prefix: string;
  private readonly decisions?: Counter;
  private readonly labels = new LabelGuard();
  private lastUnavailableLog = 0;

  constructor(
    @Inject(RATE_LIMIT_STORE) private readonly store: RateLimitStore,
    @Optional() config?: RunnerConfig,
    @Optional() metrics?: MetricService,
  ) {
    this.prefix = config?.GREENTIC_REDIS_PREFIX ?? 'greentic';
    this.decisions = metrics?.getCounter('greentic_ratelimit_decisions', {
      description:
        'Rate-limit decisions, by tenant, channel, scope and outcome (allowed, limited, unavailable)',
    });
  }

  get storeKind(): string {
    return this.store.kind;
  }

  /** Whether any limit applies to this channel's messages (most channels have none). */
  limits(resolved: ResolvedChannel): boolean {
    return (
      !EXEMPT_PROVIDERS.has(resolved.channel.provider) &&
      Boolean(resolved.tenantBinding.rateLimit || resolved.channel.rateLimit)
    );
  }

  buckets(resolved: ResolvedChannel, scope: RateScope): BucketRequest[] {
    const { tenant, tenantBinding, channel } = resolved;
    if (EXEMPT_PROVIDERS.has(channel.provider)) return [];
    // The tenant id is a Redis hash tag: a tenant's buckets share a cluster slot, so one script
    // can take from both.
    const base = `${this.prefix}:rl:{${tenant.tenantId}}:${scope}`;
    const out: BucketRequest[] = [];
    if (tenantBinding.rateLimit) out.push({ key: `${base}:tenant`, policy: tenantBinding.rateLimit });
    if (channel.rateLimit) {
      out.push({
        key: `${base}:ch:${tenant.envId}/${tenant.teamId ?? 'default'}/${channel.id}`,
        policy: channel.rateLimit,
      });
    }
    return out;
  }

  async check(resolved: ResolvedChannel, scope: RateScope): Promise<RateDecision> {
    const buckets = this.buckets(resolved, scope);
    if (buckets.length === 0) return { allowed: true, retryAfterMs: 0, remaining: Number.POSITIVE_INFINITY };
    const labels = { tenant: resolved.tenant.tenantId, channel: resolved.channel.id, scope };
    try {
      const d = await this.store.take(buckets);
      this.count(labels, d.allowed ? 'allowed' : 'limited');
      return d;
    } catch (e) {
      if (!(e instanceof CoordinationUnavailableError)) throw e;
      this.count(labels, 'unavailable');
      const now = Date.now();
      if (now - this.lastUnavailableLog > UNAVAILABLE_LOG_EVERY_MS) {
        this.lastUnavailableLog = now;
        this.logger.warn(
          { ...labels, err: e.message },
          'rate limit store unavailable; letting messages through',
        );
      }
      return { allowed: true, retryAfterMs: 0, remaining: Number.POSITIVE_INFINITY };
    }
  }

  /** Throws RateLimitedError (429, retry after) when the tenant or channel is over its rate. */
  async enforce(resolved: ResolvedChannel, scope: RateScope): Promise<void> {
    const d = await this.check(resolved, scope);
    if (d.allowed) return;
    const { tenant, channel } = resolved;
    this.logger.warn(
      {
        tenant: tenant.tenantId,
        env: tenant.envId,
        channel: channel.id,
        scope,
        retryAfterMs: d.retryAfterMs,
      },
      'message over the rate limit',
    );
    throw new RateLimitedError(
      `tenant '${tenant.tenantId}' channel '${channel.id}' is over its message rate; retry in ${Math.max(1, Math.ceil(d.retryAfterMs / 1000))} s`,
      d.retryAfterMs,
      { tenant: tenant.tenantId, channel: channel.id },
    );
  }

  private count(labels: Record<string, string>, outcome: string): void {
    this.decisions?.add(1, this.labels.bound({ ...labels, outcome }));
  }
}
