import { Controller, UseGuards } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { isReplySubject, REPLY_TO_HEADER, subjectPattern } from '../core/subjects.js';
import { RateLimitGuard } from '../ratelimit/rate-limit.guard.js';
import { assertClaimMatches, channelOf, tenancyOf } from '../tenancy/resolved-tenancy.js';
import { TenantGuard } from '../tenancy/tenant.guard.js';
import { BusContext } from './bus.context.js';
import type { MessageEnvelope } from '../core/message-envelope.js';
import { MessageProcessor } from './message-processor.service.js';

/**
 * Consumes the ingress subjects. The subject is the authority on tenancy (TenantGuard resolves
 * it); an envelope or header that claims another tenant is refused, never run. A singleton: the
 * message runs in the tenant's own MessageProcessor, taken from the scope the guard resolved.
 */
@Controller()
@UseGuards(TenantGuard, RateLimitGuard)
export class IngressController {
  // Tenancy is read off the context TenantGuard resolved it on (tenancyOf), not resolved again.
  // A replay past the delivery limit is still handed over: MessageProcessor acknowledges it if it
  // finished before (its processed ids) and refuses it otherwise.
  @MessagePattern(subjectPattern('ingress'), { replaysPastLimit: true })
  async onIngress(
    @Payload() env: MessageEnvelope,
    @Ctx() ctx: BusContext,
  ): Promise<{ ok: true; status: string }> {
    const tenancy = tenancyOf(ctx);
    const channel = channelOf(ctx);
    assertClaimMatches(env, ctx.getHeaders()['greentic-tenant'], channel, ctx.getSubject());
    const processor = await tenancy.scope.get(MessageProcessor);
    const replyTo = ctx.getHeaders()[REPLY_TO_HEADER];
    const out = await processor.process(env, channel, {
      fence: ctx.getFence(),
      pastLimit: ctx.isPastLimit(),
      // Only a replica's reply subject: a header naming anything else is not published to.
      replyTo: replyTo !== undefined && isReplySubject(replyTo) ? replyTo : undefined,
    });
    return { ok: true, status: out?.status ?? 'duplicate' };
  }
}
