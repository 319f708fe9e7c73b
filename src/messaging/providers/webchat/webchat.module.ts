import { Module } from '@nestjs/common';
import { SecretsModule } from '../../../secrets/secrets.module.js';
import { ChannelDirectLineController, DefaultDirectLineController } from './directline.controller.js';
import { DirectLineService } from './directline.service.js';
import { DirectLineStream } from './directline.stream.js';
import { WebChatChannels } from './webchat-channels.js';
import { WebChatCors } from './webchat-cors.hook.js';
import { WebChatPageController } from './webchat-page.controller.js';
import { WebChatProvider } from './webchat.provider.js';

@Module({
  imports: [SecretsModule],
  controllers: [WebChatPageController, ChannelDirectLineController, DefaultDirectLineController],
  providers: [DirectLineService, DirectLineStream, WebChatChannels, WebChatCors, WebChatProvider],
  exports: [DirectLineService],
})
export class WebChatModule {}
