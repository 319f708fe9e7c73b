import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { ResolvedChannel } from './bundle-registry.service.js';
import { channelOf, type TenancyCarrier } from './resolved-tenancy.js';

/** The channel TenantGuard resolved for this request. */
export const CurrentChannel = createParamDecorator((_: unknown, ctx: ExecutionContext): ResolvedChannel =>
  channelOf(
    ctx.getType() === 'rpc'
      ? ctx.switchToRpc().getContext<TenancyCarrier>()
      : ctx.switchToHttp().getRequest<TenancyCarrier>(),
  ),
);
