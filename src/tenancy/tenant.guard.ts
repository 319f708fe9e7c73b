import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { BadRequestError } from '../common/errors.js';
import { BundleRegistry, type ResolvedChannel } from './bundle-registry.service.js';
import { extractTenancy } from './tenancy-extractor.js';

/** Where the guard leaves the resolved tenancy on the request (HTTP) or RPC context. */
export const RESOLVED_TENANCY = Symbol('greentic.resolvedTenancy');

export interface TenancyCarrier {
  [RESOLVED_TENANCY]?: ResolvedChannel | { tenant: ResolvedChannel['tenant'] };
}

/** The channel TenantGuard left on a request or RPC context, if it resolved one. */
export function channelOf(carrier: unknown): ResolvedChannel | undefined {
  if (!carrier || typeof carrier !== 'object') return undefined;
  const r = (carrier as TenancyCarrier)[RESOLVED_TENANCY];
  return r && 'channel' in r ? r : undefined;
}

/** Like channelOf, for handlers behind TenantGuard: a missing channel is a wiring bug. */
export function requireChannel(carrier: unknown): ResolvedChannel {
  const r = channelOf(carrier);
  if (!r) throw new Error('no channel resolved: the handler is not behind TenantGuard with a channel');
  return r;
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
