import { Injectable, Logger } from '@nestjs/common';
import { GreenticError } from '../common/errors.js';
import type { EgressMessage } from '../core/message-envelope.js';
import {
  GreenticProvider,
  type IngressResult,
  type MessagingProvider,
  type ProviderRequest,
} from '../messaging/providers/messaging-provider.js';
import { httpEgressError, networkEgressError } from '../messaging/providers/provider-support.js';
import type { ReplyDelivery } from '../messaging/reply-delivery.js';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import { TIMER_PROVIDER } from '../tenancy/bundle-timers.js';

/**
 * The channel of a timer. Nothing comes in over HTTP (the scheduler fires timers); what a timer
 * flow replies goes to the binding's `callback_url` setting when it has one, and is logged
 * otherwise.
 */
@Injectable()
@GreenticProvider(TIMER_PROVIDER)
export class TimerProvider implements MessagingProvider {
  readonly id = TIMER_PROVIDER;
  private readonly logger = new Logger(TimerProvider.name);

  async ingress(_req: ProviderRequest, channel: ResolvedChannel): Promise<IngressResult> {
    throw new GreenticError(
      'timer_no_webhook',
      `'${channel.channel.id}' is a timer: the runner fires it on schedule; it has no webhook`,
      404,
      { channel: channel.channel.id },
    );
  }

  async send(msg: EgressMessage, channel: ResolvedChannel, delivery: ReplyDelivery): Promise<void> {
    const url = channel.channel.settings['callback_url'];
    if (typeof url !== 'string' || url.length === 0) {
      this.logger.log(
        {
          tenant: msg.tenant,
          timer: msg.channel,
          tick: msg.inReplyTo,
          status: msg.status,
          replies: msg.replies.length,
        },
        'timer flow finished',
      );
      return;
    }
    // Through the delivery ledger, as any provider: a redelivered tick whose callback was
    // recorded sent is not posted again. The header stays the tick's reply id, as documented.
    await delivery.whole(async () => {
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': msg.id },
          body: JSON.stringify({
            timer: msg.channel,
            tick: msg.inReplyTo,
            status: msg.status,
            replies: msg.replies,
            ...(msg.error ? { error: msg.error } : {}),
          }),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (e) {
        throw networkEgressError('timer', 'callback', e);
      }
      if (!res.ok) throw httpEgressError('timer', 'callback', res);
    });
  }
}
