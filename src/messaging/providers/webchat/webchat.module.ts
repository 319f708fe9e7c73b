import { Module, type DynamicModule } from '@nestjs/common';
import { SecretsModule } from '../../../secrets/secrets.module.js';
import { TenancyModule } from '../../../tenancy/tenancy.module.js';
import { ChannelDirectLineController, DefaultDirectLineController } from './directline.controller.js';
import { DirectLineService } from './directline.service.js';
import { DirectLineStream } from './directline.stream.js';
import { WebChatChannels } from './webchat-channels.js';
import { WebChatCors } from './webchat-cors.hook.js';
import { WebChatPageController } from './webchat-page.controller.js';
import { WebChatProvider } from './webchat.provider.js';

/**
 * Web Chat over Direct Line. Its conversations post to ingress, so it imports the application's
 * `MessagingModule.forRoot(...)` object, given to `forRoot`.
 */
@Module({
  imports: [SecretsModule, TenancyModule],
  controllers: [WebChatPageController, ChannelDirectLineController, DefaultDirectLineController],
  providers: [DirectLineService, DirectLineStream, WebChatChannels, WebChatCors, WebChatProvider],
  exports: [DirectLineService],
})
export class WebChatModule {
  static forRoot(messaging: DynamicModule): DynamicModule {
    return { module: WebChatModule, imports: [messaging] };
  }
}
