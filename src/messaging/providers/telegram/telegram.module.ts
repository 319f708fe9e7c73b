import { Module } from '@nestjs/common';
import { TelegramProvider } from './telegram.provider.js';

@Module({ providers: [TelegramProvider] })
export class TelegramModule {}
