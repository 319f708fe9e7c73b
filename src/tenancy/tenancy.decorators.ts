import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { ResolvedChannel } from './bundle-registry.service.js';
import { requireChannel } from './tenant.guard.js';

/** The channel TenantGuard resolved for this request. */
export const CurrentChannel = createParamDecorator((_: unknown, ctx: ExecutionContext): ResolvedChannel =>
  requireChannel(
    ctx.getType() === 'rpc'
      ? ctx.switchToRpc().getContext<unknown>()
      : ctx.switchToHttp().getRequest<unknown>(),
  ),
);
