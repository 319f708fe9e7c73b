import { Module, type DynamicModule } from '@nestjs/common';
import { SecretsModule } from '../../../secrets/secrets.module.js';
import { TelegramProvider } from './telegram.provider.js';

@Module({ imports: [SecretsModule], providers: [TelegramProvider] })
export class TelegramModule {
  /** `sessions`: the application's `SessionsModule.forRoot(...)`, for PROVIDER_STASH. */
  static forRoot(sessions: DynamicModule): DynamicModule {
    return { module: TelegramModule, imports: [sessions] };
  }
}
