import { Injectable, Logger } from '@nestjs/common';
import { GreenticError } from '../common/errors.js';
import type { EgressMessage } from '../core/message-envelope.js';
import {
  GreenticProvider,
  type IngressResult,
  type MessagingProvider,
  type ProviderRequest,
} from '../messaging/providers/messaging-provider.js';
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

  async send(msg: EgressMessage, channel: ResolvedChannel): Promise<void> {
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
    const res = await fetch(url, {
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
    if (!res.ok) {
      throw new GreenticError('egress_failed', `timer callback answered ${res.status}`, 502, {
        retryable: res.status >= 500 || res.status === 429,
        retryAfter: res.headers.get('retry-after') ?? undefined,
      });
    }
  }
}
