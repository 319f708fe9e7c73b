import { Module } from '@nestjs/common';
import { SecretsModule } from '../../../secrets/secrets.module.js';
import { TelegramProvider } from './telegram.provider.js';

@Module({ imports: [SecretsModule], providers: [TelegramProvider] })
export class TelegramModule {}
