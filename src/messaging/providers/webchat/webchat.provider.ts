import { Injectable } from '@nestjs/common';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import type { EgressMessage } from '../../../core/message-envelope.js';
import { GreenticError } from '../../../common/errors.js';
import { GreenticProvider, type IngressResult, type MessagingProvider } from '../messaging-provider.js';
import { DirectLineService } from './directline.service.js';

/**
 * WebChat: a Direct Line 3.0 service inside the runner (DirectLineService + controllers + stream).
 * Ingress arrives on the Direct Line routes, not on `/webhooks`; egress appends the flow's replies
 * to the conversation, which the stream and polling hand to the client.
 *
 * Settings: `token_ttl_seconds` (1800), `bot_id`, `bot_name`, `title`, `accent_color`, `page` (true),
 * `allowed_origins` (sites whose pages may call the channel: see WebChatCors).
 * Secrets: `directline_secret`.
 */
@Injectable()
@GreenticProvider('webchat')
export class WebChatProvider implements MessagingProvider {
  readonly id = 'webchat';

  constructor(private readonly dl: DirectLineService) {}

  async ingress(): Promise<IngressResult> {
    throw new GreenticError(
      'wrong_route',
      'webchat: activities are posted to /webchat/{tenant}/{env}/{team}/{channel}/v3/directline/conversations/{id}/activities',
      404,
    );
  }

  send(msg: EgressMessage, channel: ResolvedChannel): Promise<void> {
    return this.dl.deliver(channel, msg);
  }
}
