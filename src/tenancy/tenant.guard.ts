import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { BadRequestError } from '../common/errors.js';
import { BundleRegistry, type ResolvedChannel } from './bundle-registry.service.js';
import { extractTenancy } from './tenancy-extractor.js';

/** Where the guard leaves the resolved tenancy on the request (HTTP) or RPC context. */
export const RESOLVED_TENANCY = Symbol('greentic.resolvedTenancy');

export interface TenancyCarrier {
  [RESOLVED_TENANCY]?: ResolvedChannel | { tenant: ResolvedChannel['tenant'] };
}

/**
 * The one guard every ingress passes, HTTP or NATS. Unknown tenant/env/team/channel is refused
 * (UnknownTenancyError → 404 naming the part), never defaulted.
 */
@Injectable()
export class TenantGuard implements CanActivate {
  constructor(private readonly registry: BundleRegistry) {}

  canActivate(context: ExecutionContext): boolean {
    const carrier =
      context.getType() === 'rpc'
        ? context.switchToRpc().getContext<unknown>()
        : context.switchToHttp().getRequest<unknown>();
    const source =
      context.getType() === 'rpc'
        ? { context: carrier as { getSubject?: () => string }, pattern: undefined }
        : carrier;
    const coords = extractTenancy(source);
    if (!coords)
      throw new BadRequestError('no tenancy in request (expected /{tenant}/{env}/{team}/{channel})');
    const resolved =
      coords.channel !== undefined && coords.team !== undefined
        ? this.registry.resolveChannel({
            tenant: coords.tenant,
            env: coords.env,
            team: coords.team,
            channel: coords.channel,
          })
        : { tenant: this.registry.resolveTenant(coords).ctx };
    if (carrier && typeof carrier === 'object') (carrier as TenancyCarrier)[RESOLVED_TENANCY] = resolved;
    return true;
  }
}
