import { Controller, Inject, UseGuards } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { subjectPattern } from '../core/subjects.js';
import { TenancyMismatchError } from '../common/errors.js';
import { TENANT_CTX, UNSCOPED_TENANT, type TenantCtx } from '../core/tenant-ctx.js';
import { RateLimitGuard } from '../ratelimit/rate-limit.guard.js';
import { requireChannel, TenantGuard } from '../tenancy/tenant.guard.js';
import { BusContext } from './bus.context.js';
import type { MessageEnvelope } from '../core/message-envelope.js';
import { MessageProcessor } from './message-processor.service.js';

/**
 * Consumes the ingress subjects. The subject is the authority on tenancy (TenantGuard resolves
 * it); an envelope or header that claims another tenant is refused, never run.
 */
@Controller()
@UseGuards(TenantGuard, RateLimitGuard)
export class IngressController {
  constructor(
    @Inject(TENANT_CTX) private readonly tenant: TenantCtx,
    private readonly processor: MessageProcessor,
  ) {}

  // The channel is read off the context TenantGuard resolved it on, not through a parameter
  // decorator: each decorated parameter costs Nest an async pipe run per message.
  @MessagePattern(subjectPattern('ingress'))
  async onIngress(
    @Payload() env: MessageEnvelope,
    @Ctx() ctx: BusContext,
  ): Promise<{ ok: true; status: string }> {
    const channel = requireChannel(ctx);
    const t = this.tenant === UNSCOPED_TENANT ? channel.tenant : this.tenant;
    const headerTenant = ctx.getHeaders()['greentic-tenant'];
    if (
      env.tenant !== t.tenantId ||
      env.env !== t.envId ||
      env.team !== (t.teamId ?? 'default') ||
      env.channel !== channel.channel.id ||
      (headerTenant !== undefined && headerTenant !== t.tenantId)
    ) {
      throw new TenancyMismatchError(
        `envelope claims ${env.tenant}/${env.env}/${env.team}/${env.channel} on subject ${ctx.getSubject()}`,
        {
          subject: ctx.getSubject(),
          tenant: t.tenantId,
        },
      );
    }
    const out = await this.processor.process(env, channel, ctx.getTraceContext());
    return { ok: true, status: out?.status ?? 'duplicate' };
  }
}
