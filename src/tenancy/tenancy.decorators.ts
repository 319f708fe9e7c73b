import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { ResolvedChannel } from './bundle-registry.service.js';
import { RESOLVED_TENANCY, type TenancyCarrier } from './tenant.guard.js';

/** The channel TenantGuard resolved for this request. */
export const CurrentChannel = createParamDecorator((_: unknown, ctx: ExecutionContext): ResolvedChannel => {
  const carrier =
    ctx.getType() === 'rpc'
      ? ctx.switchToRpc().getContext<TenancyCarrier>()
      : ctx.switchToHttp().getRequest<TenancyCarrier>();
  const r = carrier[RESOLVED_TENANCY];
  if (!r || !('channel' in r))
    throw new Error('CurrentChannel used on a route without TenantGuard and a channel');
  return r;
});
