import { Controller, UseGuards } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import type { EgressMessage } from '../core/message-envelope.js';
import { subjectPattern } from '../core/subjects.js';
import { assertClaimMatches, channelOf } from '../tenancy/resolved-tenancy.js';
import { TenantGuard } from '../tenancy/tenant.guard.js';
import { BusContext } from './bus.context.js';
import type { BusHandlerOptions } from './bus.transport.js';
import { EgressDispatcher } from './egress-dispatcher.service.js';

/** The bus transport's route set egress is consumed through (EgressDispatcher.routes()). */
export const EGRESS_ROUTES = 'egress';

/** Deliveries of one reply before it is dead-lettered. */
export const EGRESS_MAX_DELIVER = 5;

/** Past the limit a message is handed over once more: EgressDispatcher acks it if it was delivered. */
export const EGRESS_CONSUMER: BusHandlerOptions = {
  routes: EGRESS_ROUTES,
  maxDeliver: EGRESS_MAX_DELIVER,
  replaysPastLimit: true,
};

/**
 * Consumes the egress subjects the way IngressController consumes ingress: through the bus
 * transport, behind TenantGuard (an egress subject naming no channel of the bundle is refused and
 * dead-lettered). The subject is the authority: a message whose body or tenancy header names
 * another channel is refused too, never sent with that channel's provider and credentials. The
 * dispatcher sends with the channel the guard resolved. The transport subscribes it once per
 * provider (EGRESS_ROUTES); delivery, retries and dead letters are the dispatcher's.
 */
@Controller()
@UseGuards(TenantGuard)
export class EgressController {
  constructor(private readonly dispatcher: EgressDispatcher) {}

  @EventPattern<string>(subjectPattern('egress'), EGRESS_CONSUMER)
  async onEgress(@Payload() m: EgressMessage, @Ctx() ctx: BusContext): Promise<void> {
    const channel = channelOf(ctx);
    const headers = ctx.getHeaders();
    assertClaimMatches(m, headers['greentic-tenant'], channel, ctx.getSubject());
    await this.dispatcher.deliver(
      {
        subject: ctx.getSubject(),
        data: m,
        headers,
        deliveryCount: ctx.getDeliveryCount(),
        pastLimit: ctx.isPastLimit(),
      },
      channel,
    );
  }
}
