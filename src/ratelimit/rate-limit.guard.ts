import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import type { TenancyCarrier } from '../tenancy/resolved-tenancy.js';
import { RateLimitedError } from './rate-limit.errors.js';
import { RateLimitService } from './rate-limit.service.js';

/**
 * Applies the tenant's and channel's rate limits after TenantGuard has resolved them (list it
 * after TenantGuard: `@UseGuards(TenantGuard, RateLimitGuard)`). A webhook over the limit gets 429
 * with `Retry-After` (seconds); a bus delivery over the limit fails with RateLimitedError, which
 * the bus redelivers after the error's `retryAfterMs`. Only message-carrying requests (POST) count:
 * GET challenges of platforms verifying a webhook URL are never refused.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(private readonly limits: RateLimitService) {}

  // A plain `true` when no limit applies: Nest takes a boolean as it is, where a promise costs
  // its guard pipeline several more per message.
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    if (context.getType() === 'rpc') {
      const resolved = context.switchToRpc().getContext<TenancyCarrier>().tenancy?.channel;
      if (!resolved || !this.limits.limits(resolved)) return true;
      return this.limits.enforce(resolved, 'bus').then(() => true);
    }
    const http = context.switchToHttp();
    const req = http.getRequest<FastifyRequest>();
    if (req.method !== 'POST') return true;
    const resolved = req.tenancy?.channel;
    if (!resolved || !this.limits.limits(resolved)) return true;
    return this.enforceHttp(http, resolved);
  }

  private async enforceHttp(
    http: ReturnType<ExecutionContext['switchToHttp']>,
    resolved: ResolvedChannel,
  ): Promise<boolean> {
    try {
      await this.limits.enforce(resolved, 'http');
    } catch (e) {
      if (e instanceof RateLimitedError) {
        void http.getResponse<FastifyReply>().header('retry-after', String(e.details['retryAfter']));
      }
      throw e;
    }
    return true;
  }
}
