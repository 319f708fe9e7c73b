import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { BadRequestError } from '../common/errors.js';
import { BundleRegistry, type TenancyCoordinates } from './bundle-registry.service.js';
import type { ResolvedTenancy, TenancyCarrier } from './resolved-tenancy.js';
import { extractTenancy } from './tenancy-extractor.js';
import { TenantScopes } from './tenant-scopes.service.js';

/**
 * The one guard every ingress passes, HTTP or NATS, and the one place a hop's tenancy is read and
 * resolved: the coordinates (route params, tenancy headers or the bus subject) through the
 * bundle registry to the TenantCtx, the channel and the tenant's service scope, left on the
 * request or RPC context as `tenancy` (read it with `tenancyOf`). Unknown tenant/env/team/channel
 * is refused (UnknownTenancyError → 404 naming the part), never defaulted.
 */
@Injectable()
export class TenantGuard implements CanActivate {
  constructor(
    private readonly registry: BundleRegistry,
    private readonly scopes: TenantScopes,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const rpc = context.getType() === 'rpc';
    const carrier = rpc
      ? context.switchToRpc().getContext<TenancyCarrier>()
      : context.switchToHttp().getRequest<TenancyCarrier>();
    const coords = extractTenancy(rpc ? { context: carrier } : carrier);
    if (!coords)
      throw new BadRequestError('no tenancy in request (expected /{tenant}/{env}/{team}/{channel})');
    carrier.tenancy = this.resolve(coords);
    return true;
  }

  private resolve(c: TenancyCoordinates): ResolvedTenancy {
    if (c.channel !== undefined && c.team !== undefined) {
      const channel = this.registry.resolveChannel({
        tenant: c.tenant,
        env: c.env,
        team: c.team,
        channel: c.channel,
      });
      return {
        tenant: channel.tenant,
        binding: channel.tenantBinding,
        channel,
        scope: this.scopes.of(channel.tenant),
      };
    }
    const { ctx, binding } = this.registry.resolveTenant(c);
    return { tenant: ctx, binding, scope: this.scopes.of(ctx) };
  }
}
