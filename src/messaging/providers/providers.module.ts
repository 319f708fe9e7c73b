import { Module, type DynamicModule } from '@nestjs/common';
import { SlackModule } from './slack/slack.module.js';
import { TeamsModule } from './teams/teams.module.js';
import { TelegramModule } from './telegram/telegram.module.js';
import { WebChatModule } from './webchat/webchat.module.js';
import { WhatsAppModule } from './whatsapp/whatsapp.module.js';

/**
 * The built-in channels, one module each. Custom channels are modules of the same shape, added
 * with `AppModule.forRoot({ imports: [...] })` (see examples/custom-provider). ProviderRegistry
 * (in MessagingModule) finds them all by discovery, so MessagingModule does not import them.
 */
@Module({ imports: [SlackModule, TeamsModule, WhatsAppModule] })
export class ProvidersModule {
  /**
   * `messaging` is the application's `MessagingModule.forRoot(...)`, which Web Chat posts to;
   * `sessions` its `SessionsModule.forRoot(...)`, whose PROVIDER_STASH Telegram keeps card data in.
   */
  static forRoot(modules: { messaging: DynamicModule; sessions: DynamicModule }): DynamicModule {
    return {
      module: ProvidersModule,
      imports: [WebChatModule.forRoot(modules.messaging), TelegramModule.forRoot(modules.sessions)],
    };
  }
}
